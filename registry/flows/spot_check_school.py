"""spot_check_school (学校抽查): one sampled school's part of a spot check, started by the check's
下发各校 step, never by a user (its starter refuses anything else). Rules: registry/spot_checks/service.py."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry.access import holds
from registry.errors import Conflict, InvalidTransition, PermissionDenied, msg
from registry.flows import Flow, ServiceContext, StartPlan
from registry.forms import validate_form
from registry.spot_checks import service
from registry.spot_checks.models import CheckStatus, SpotCheckSchool
from registry.users import Role, User

START_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {"check_school_id": {"title": "抽查学校", "type": "integer", "minimum": 1}},
    "required": ["check_school_id"],
    "additionalProperties": False,
}


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    validate_form(START_FORM, data)
    part = session.get(SpotCheckSchool, data["check_school_id"])
    # Only the check's own step reaches here with a part that has no instance yet (same transaction).
    if part is None or part.instance_id is not None or part.check.status != CheckStatus.running:
        raise Conflict(msg("学校抽查由抽查流程在抽取样本后自动发起，不能单独发起"))
    check = part.check
    if not holds(actor, Role.auditor, check.county):
        raise PermissionDenied(msg("只有县监督检查员可以下发抽查"))
    return StartPlan(subject=part, subject_type="spot_check_school", subject_id=part.id,
                     subject_label=f"{part.school.name}（{check.title}）"[:100], org_unit=part.school, role="auditor",
                     data={"check_school_id": part.id, "spot_check_id": check.id, "school_code": part.school.code,
                           "school_name": part.school.name, "county_code": check.county.code, "title": check.title,
                           "month": check.month, "students": len(part.students)},
                     warnings=[])


def _part_id(workflow_data: dict[str, Any]) -> int:
    return int(workflow_data["check_school_id"])


def _submit_evidence(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    service.submit_evidence(ctx.session, actor=ctx.actor, part_id=_part_id(workflow_data),
                            answers=form_data.get("students") or [], now=ctx.now, instance_id=ctx.instance_id)


def _record_findings(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    service.record_findings(ctx.session, actor=ctx.actor, part_id=_part_id(workflow_data),
                            entries=form_data.get("students") or [], summary=form_data.get("summary"), now=ctx.now,
                            instance_id=ctx.instance_id)


def _submit_rectification(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    if ctx.actor is None:
        raise PermissionDenied(msg("整改须由学校提交"))
    service.submit_rectification(ctx.session, actor=ctx.actor, part_id=_part_id(workflow_data),
                                 report=form_data.get("report"), measures=form_data.get("students") or [],
                                 now=ctx.now, instance_id=ctx.instance_id)


def _count_findings(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return service.findings_count(ctx.session, part_id=int(params["check_school_id"]))


def _record_verification(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    decision = str(params["decision"])
    service.record_verification(ctx.session, actor=ctx.actor, part_id=int(params["check_school_id"]),
                                decision=decision, comment=params.get("comment"), now=ctx.now,
                                instance_id=ctx.instance_id)
    return decision


def _close(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    service.close_part(ctx.session, actor=ctx.actor, part_id=int(params["check_school_id"]), now=ctx.now,
                       instance_id=ctx.instance_id)
    return True


def _withdraw(ctx: ServiceContext, part_id: int, reason: str) -> None:
    part = ctx.session.get(SpotCheckSchool, part_id)
    if part is None or part.check.status != CheckStatus.withdrawn:
        # A sample is a whole: dropping one school would leave a sample the seed no longer explains.
        raise InvalidTransition(msg("不能单独撤回一所学校的抽查；各校尚未办理时，可在抽查流程中撤回整个抽查"))


FLOW = Flow(
    process_id="spot_check_school",
    services={"count_spot_check_findings": _count_findings, "record_spot_check_verification": _record_verification,
              "close_spot_check_school": _close},
    task_actions={"submit_spot_check_evidence": _submit_evidence, "record_spot_check_findings": _record_findings,
                  "submit_spot_check_rectification": _submit_rectification},
    starter=_start,
    withdraw=_withdraw,
)
