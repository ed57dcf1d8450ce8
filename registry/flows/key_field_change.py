"""key_field_change (关键信息变更, Art. 14): a guardian's application to change a locked record's key
fields, with the signed application scanned, reviewed by the school and approved by the county."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry import key_field_requests
from registry.errors import RuleViolation, msg
from registry.flows import Flow, ServiceContext, StartPlan
from registry.org_units import county_of
from registry.rules.student import FIELD_LABELS
from registry.users import User


def _register(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    key_field_requests.link(ctx.session, request_id=int(params["request_id"]), instance_id=ctx.instance_id)
    return True


def _check_request(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    checked = key_field_requests.check_ready(ctx.session, request_id=int(params["request_id"]), today=ctx.today)
    return {**checked, "field_labels": "、".join(FIELD_LABELS[f] for f in checked["fields"])}


def _check_id_number(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return key_field_requests.check_id_number(ctx.session, request_id=int(params["request_id"]))


def _apply(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return key_field_requests.apply(ctx.session, request_id=int(params["request_id"]), actor=ctx.actor,
                                    today=ctx.today, instance_id=ctx.instance_id)


def _reject(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    key_field_requests.reject(ctx.session, request_id=int(params["request_id"]), comment=params.get("comment"),
                              actor=ctx.actor, instance_id=ctx.instance_id)
    return "rejected"


def _revise(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    """The registrar's corrected application goes to the request table; the workflow keeps only its id."""
    key_field_requests.revise_request(ctx.session, actor=ctx.actor, request_id=int(workflow_data["request_id"]),
                                      data=form_data, today=ctx.today)


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    student_id = data.get("student_id")
    if not isinstance(student_id, int) or isinstance(student_id, bool):
        raise RuleViolation(msg("student_id：请指定学生编号"), details=[{"field": "student_id", "message": msg("必填，整数")}])
    request = key_field_requests.file_request(session, actor=actor, student_id=student_id,
                                              changes=data.get("changes"), reason=data.get("reason"), today=today)
    student = request.student
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=student.school, role="school_registrar", warnings=[],
                     data={"request_id": request.id, "student_id": student.id,
                           "field_labels": "、".join(FIELD_LABELS[f] for f in request.changes),
                           # The county approves: its task carries the county, not the school (org_unit property).
                           "county_code": county_of(session, student.school).code})


def _withdraw(ctx: ServiceContext, student_id: int, reason: str) -> None:
    key_field_requests.withdraw(ctx.session, instance_id=ctx.instance_id, reason=reason, actor=ctx.actor)


FLOW = Flow(
    process_id="key_field_change",
    services={"register_key_field_request": _register, "check_key_field_request": _check_request,
              "check_key_field_id_number": _check_id_number, "apply_key_field_request": _apply,
              "reject_key_field_request": _reject},
    task_actions={"revise_key_field_request": _revise},
    starter=_start,
    withdraw=_withdraw,
)
