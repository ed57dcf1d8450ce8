"""status_change (学籍异动, Art. 14, 15): one student's 休学, 复学, 辍学 or 死亡, one active student's
就读方式/一补变更, or a school's graduation list; school review, county approval, then the status (or the
boarding mode and 一补) and the subsidy months change from the given month."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry import graduation, status_changes, student_status
from registry.errors import RuleViolation, msg
from registry.flows import Flow, ServiceContext, StartPlan
from registry.org_units import county_of
from registry.students import StudentStatus, get_student_unscoped
from registry.users import User


def _check_change(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    """A revised request is checked like a new one: nobody reviews a change the registry would refuse."""
    student = get_student_unscoped(ctx.session, int(params["student_id"]))
    status_changes.check_request(ctx.session, student=student, to_status=params.get("to_status"),
                                 effective_month=params.get("effective_month"), reason=params.get("reason"))
    return status_changes.change_label(str(params["to_status"]))


def _apply_change(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    student = student_status.change_status(ctx.session, student_id=int(params["student_id"]),
                                           to_status=str(params["to_status"]),
                                           effective_month=str(params["effective_month"]),
                                           reason=str(params["reason"]), actor=ctx.actor, instance_id=ctx.instance_id)
    return student.status


def _check_boarding(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    """A revised 就读方式/一补变更 is checked like a new one; returns what it now changes, for the reviewers."""
    student = get_student_unscoped(ctx.session, int(params["student_id"]))
    student_status.check_boarding(ctx.session, student=student, boarding_mode=params.get("boarding_mode"),
                                  boarding_allowance=params.get("boarding_allowance"),
                                  effective_month=params.get("effective_month"), reason=params.get("reason"))
    return status_changes.boarding_change_label(student, params["boarding_mode"], params["boarding_allowance"])


def _apply_boarding(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    student = student_status.change_boarding(ctx.session, student_id=int(params["student_id"]),
                                             boarding_mode=params["boarding_mode"],
                                             boarding_allowance=params["boarding_allowance"],
                                             effective_month=str(params["effective_month"]),
                                             reason=str(params["reason"]), actor=ctx.actor,
                                             instance_id=ctx.instance_id)
    return {"boarding_mode": student.boarding_mode, "boarding_allowance": student.boarding_allowance}


def _register_batch(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    graduation.link(ctx.session, batch_id=int(params["batch_id"]), instance_id=ctx.instance_id)
    return True


def _graduate(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return graduation.graduate(ctx.session, batch_id=int(params["batch_id"]), actor=ctx.actor,
                               instance_id=ctx.instance_id)


def _close_batch(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    graduation.close(ctx.session, batch_id=int(params["batch_id"]), decision=str(params["decision"]),
                     comment=params.get("comment"), actor=ctx.actor, instance_id=ctx.instance_id)
    return str(params["decision"])


def _refuse_unknown(data: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise RuleViolation(msg("未知字段：{unknown}", unknown="、".join(unknown)),
                            details=[{"field": k, "message": msg("未知字段")} for k in unknown])


def _student_id(data: dict[str, Any]) -> int:
    student_id = data.get("student_id")
    if not isinstance(student_id, int) or isinstance(student_id, bool):
        raise RuleViolation(msg("student_id：请指定学生编号"), details=[{"field": "student_id", "message": msg("必填，整数")}])
    return student_id


def _start_graduation(session: Session, actor: User, data: dict[str, Any]) -> StartPlan:
    _refuse_unknown(data, {"to_status", "school_code", "student_ids", "effective_month", "reason"})
    batch = graduation.file_batch(session, actor=actor, school_code=data.get("school_code"),
                                  student_ids=data.get("student_ids"), effective_month=data.get("effective_month"),
                                  reason=data.get("reason"))
    count = len(graduation.student_ids_of(session, batch))
    grade = graduation.GRADE_NAMES[batch.grade]
    return StartPlan(subject=batch, subject_type="graduation_batch", subject_id=batch.id,
                     subject_label=f"{batch.school.name}{grade}毕业 {count} 人", org_unit=batch.school,
                     role="school_registrar", warnings=[],
                     data={"kind": "graduation", "batch_id": batch.id, "to_status": StudentStatus.graduated.value,
                           "change_label": "毕业", "grade_name": grade, "students_total": count,
                           "effective_month": batch.effective_month, "reason": batch.reason,
                           "county_code": county_of(session, batch.school).code})


def _start_boarding(session: Session, actor: User, data: dict[str, Any]) -> StartPlan:
    _refuse_unknown(data, {"kind", "student_id", "boarding_mode", "boarding_allowance", "effective_month", "reason"})
    student, request = status_changes.file_boarding_change(
        session, actor=actor, student_id=_student_id(data), boarding_mode=data.get("boarding_mode"),
        boarding_allowance=data.get("boarding_allowance"), effective_month=data.get("effective_month"),
        reason=data.get("reason"))
    # Codes, a flag and a month, like a status change: the workflow data holds no personal data.
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=student.school, role="school_registrar", warnings=[],
                     data={"kind": status_changes.BOARDING, "student_id": student.id, **request,
                           "county_code": county_of(session, student.school).code})


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    if data.get("to_status") == StudentStatus.graduated and "student_id" not in data:
        return _start_graduation(session, actor, data)
    if data.get("kind") == status_changes.BOARDING:
        return _start_boarding(session, actor, data)
    _refuse_unknown(data, {"student_id", "to_status", "effective_month", "reason"})
    student, reason = status_changes.file_change(session, actor=actor, student_id=_student_id(data),
                                                 to_status=data.get("to_status"),
                                                 effective_month=data.get("effective_month"), reason=data.get("reason"))
    # Ids, status codes and a month: the workflow data holds no personal data (DESIGN, engine facts).
    # The county's code: its approval task carries the county, not the school (org_unit property).
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=student.school, role="school_registrar", warnings=[],
                     data={"kind": "single", "student_id": student.id, "to_status": data["to_status"],
                           "change_label": status_changes.change_label(data["to_status"]),
                           "effective_month": data["effective_month"], "reason": reason,
                           "county_code": county_of(session, student.school).code})


def _withdraw(ctx: ServiceContext, subject_id: int, reason: str) -> None:
    # A single change has written nothing yet; a graduation list closes.
    graduation.withdraw(ctx.session, instance_id=ctx.instance_id, reason=reason, actor=ctx.actor)


FLOW = Flow(
    process_id="status_change",
    services={"check_status_change": _check_change, "apply_status_change": _apply_change,
              "check_boarding_change": _check_boarding, "apply_boarding_change": _apply_boarding,
              "register_graduation_batch": _register_batch, "graduate_batch": _graduate,
              "close_graduation_batch": _close_batch},
    starter=_start,
    withdraw=_withdraw,
)
