"""student_intake (学生信息录入审核, Art. 13): one student entered, checked county-wide, confirmed."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry import students
from registry.flows import Flow, ServiceContext, StartPlan
from registry.forms import validate_form, wrapped
from registry.users import User


def _check_duplicates(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return students.check_duplicates(ctx.session, student_id=int(params["student_id"]))


def _activate_student(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    students.activate(ctx.session, student_id=int(params["student_id"]), actor=ctx.actor, now=ctx.now,
                      instance_id=ctx.instance_id)
    return "active"


def _void_intake(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    reason = str(params.get("reason") or "录入被驳回")
    students.void(ctx.session, student_id=int(params["student_id"]), reason=reason, actor=ctx.actor,
                  instance_id=ctx.instance_id)
    return "voided"


def _revise_student(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    """The registrar's corrections go to the student table; the workflow keeps only the id."""
    ctx.warnings = students.revise(ctx.session, actor=ctx.actor, student_id=int(workflow_data["student_id"]),
                                   data=form_data, today=ctx.today, instance_id=ctx.instance_id)
    ctx.subject_label = form_data["name"]


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    validate_form(wrapped("student", forms["student"]), data)
    student, warnings = students.register_pending(session, actor=actor, data=data["student"], today=today)
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=student.school, role="school_registrar", data={"student_id": student.id},
                     warnings=warnings)


def _withdraw(ctx: ServiceContext, student_id: int, reason: str) -> None:
    students.void(ctx.session, student_id=student_id, reason=f"发起人撤回：{reason}", actor=ctx.actor,
                  instance_id=ctx.instance_id)


FLOW = Flow(
    process_id="student_intake",
    services={"check_duplicates": _check_duplicates, "activate_student": _activate_student, "void_intake": _void_intake},
    task_actions={"revise_student": _revise_student},
    starter=_start,
    withdraw=_withdraw,
)
