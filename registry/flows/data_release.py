"""data_release (信息提供审批, Art. 24): a request to provide student-level data outside the system,
approved by the county; on approval the file is built and granted to the requester. The rules:
registry/data_releases.py."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry import data_releases
from registry.flows import Flow, ServiceContext, StartPlan
from registry.org_units import county_of
from registry.users import User


def _register(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    data_releases.link(ctx.session, release_id=int(params["release_id"]), instance_id=ctx.instance_id)
    return True


def _check(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return data_releases.check_release(ctx.session, release_id=int(params["release_id"]))


def _build(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return data_releases.approve(ctx.session, release_id=int(params["release_id"]), actor=ctx.actor, now=ctx.now,
                                 files=ctx.files)


def _reject(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    data_releases.reject(ctx.session, release_id=int(params["release_id"]), comment=params.get("comment"),
                         actor=ctx.actor, now=ctx.now)
    return "rejected"


def _revise(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    """The corrected request goes to the release table; the workflow keeps only its id."""
    data_releases.revise(ctx.session, actor=ctx.actor, release_id=int(workflow_data["release_id"]), data=form_data)


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    release = data_releases.file_release(session, actor=actor, data=data)
    # The requester's role picks the lane a returned request goes back to.
    return StartPlan(subject=release, subject_type="data_release", subject_id=release.id,
                     subject_label=data_releases.subject_label(release), org_unit=release.org_unit,
                     role=release.requester_role, warnings=[],
                     data={"release_id": release.id, "requester_role": release.requester_role,
                           # The county approves whatever the scope: its task carries the county (org_unit property).
                           "county_code": county_of(session, release.org_unit).code})


def _withdraw(ctx: ServiceContext, subject_id: int, reason: str) -> None:
    data_releases.withdraw(ctx.session, instance_id=ctx.instance_id, reason=reason, actor=ctx.actor)


FLOW = Flow(
    process_id="data_release",
    services={"register_data_release": _register, "check_data_release": _check,
              "build_data_release": _build, "reject_data_release": _reject},
    task_actions={"revise_data_release": _revise},
    starter=_start,
    withdraw=_withdraw,
)
