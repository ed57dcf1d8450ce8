"""The registry actions a BPMN process may call by name, and how each process is started.

BPMN decides who acts next; these functions decide what is valid and write it.
Service tasks name an action in `spiffworkflow:serviceTaskOperator`; user tasks name a
completion action in their `action` property; starters turn API start data into a subject.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from registry import students
from registry.errors import RuleViolation
from registry.forms import validate_form, wrapped
from registry.org_units import OrgUnit
from registry.rules.findings import Finding
from registry.users import User


@dataclass
class ServiceContext:
    """What an action may use while one unit of work advances one instance."""

    session: Session
    actor: User | None
    instance_id: int
    now: datetime
    overdue_task_ids: set[str] = field(default_factory=set)
    subject_label: str | None = None
    warnings: list[Finding] = field(default_factory=list)
    new_instance: bool = False

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True)
class StartPlan:
    # Held while the instance starts, so service tasks find it in the session's identity map.
    subject: Any
    subject_type: str
    subject_id: int
    subject_label: str
    org_unit: OrgUnit
    role: str
    data: dict[str, Any]
    warnings: list[Finding]


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


def _mark_overdue(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    ctx.overdue_task_ids.add(str(params["task_id"]))
    return True


SERVICES: dict[str, Callable[[ServiceContext, dict[str, Any]], Any]] = {
    "check_duplicates": _check_duplicates,
    "activate_student": _activate_student,
    "void_intake": _void_intake,
    "mark_overdue": _mark_overdue,
}


def _revise_student(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    """The registrar's corrections go to the student table; the workflow keeps only the id."""
    ctx.warnings = students.revise(ctx.session, actor=ctx.actor, student_id=int(workflow_data["student_id"]),
                                   data=form_data, today=ctx.today, instance_id=ctx.instance_id)
    ctx.subject_label = form_data["name"]


TASK_ACTIONS: dict[str, Callable[[ServiceContext, dict[str, Any], dict[str, Any]], None]] = {
    "revise_student": _revise_student,
}


def _start_student_intake(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict],
                          today: date) -> StartPlan:
    validate_form(wrapped("student", forms["student"]), data)
    student, warnings = students.register_pending(session, actor=actor, data=data["student"], today=today)
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=student.school, role="school_registrar", data={"student_id": student.id},
                     warnings=warnings)


STARTERS: dict[str, Callable[..., StartPlan]] = {
    "student_intake": _start_student_intake,
}


def starter_for(process_id: str) -> Callable[..., StartPlan]:
    starter = STARTERS.get(process_id)
    if starter is None:
        raise RuleViolation(f"流程 {process_id} 不能直接发起", details=[{"field": "process_id", "message": "不能直接发起"}])
    return starter
