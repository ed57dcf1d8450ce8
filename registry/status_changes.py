"""A school's request to change one student's status (学籍异动): 休学, 复学, 辍学, 死亡; or how an active
student attends and whether they get 一补 (就读方式/一补变更, `file_boarding_change`).

The registrar files it, the principal reviews it, the county approves it (Art. 14: 经县级教育部门审批后
对系统数据进行相应更改); only then does `student_status.change_status` change the record and the
subsidy months (Art. 15). This checks a request when it is filed and each time it is revised, so that
nobody reviews a change the registry would refuse. Graduation goes by school list (graduation.py);
a move to another school is a transfer (student_transfer).
"""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry import process_guards, student_status, students
from registry.access import holds
from registry.errors import PermissionDenied, RuleViolation, msg
from registry.students import Student, StudentStatus
from registry.users import Role, User

S = StudentStatus
# What each requested status is called as a change (复学 from 辍学 is the re-entry of 控辍保学).
CHANGE_LABELS = {S.suspended: "休学", S.active: "复学", S.dropped_out: "辍学", S.deceased: "死亡"}
_ELSEWHERE = {S.graduated: "毕业请由学籍管理员提交全校毕业名单（/graduations）",
              S.transferred_out: "转出请通过转学流程办理"}
# The request kind (workflow data `kind`) of a 就读方式/一补变更, beside "single" and "graduation".
BOARDING = "boarding"
KIND_LABELS = {BOARDING: "就读方式/一补变更"}


def change_label(to_status: str) -> str:
    return CHANGE_LABELS.get(S(to_status), to_status) if to_status in S.__members__ else to_status


def choices(student: Student) -> list[tuple[str, str]]:
    """The changes a registrar may request for this student now, as (to_status or BOARDING, label)."""
    allowed = student_status.TRANSITIONS.get(S(student.status), frozenset())
    found = [(str(status), label) for status, label in CHANGE_LABELS.items() if status in allowed]
    return found + ([(BOARDING, KIND_LABELS[BOARDING])] if student.status == S.active else [])


def may_request(actor: User, student: Student) -> bool:
    """Whether to offer 学籍异动 for this student: their school's registrar, a status that may change."""
    return holds(actor, Role.school_registrar, student.school) and bool(choices(student))


def _requestable(to_status: Any) -> None:
    if isinstance(to_status, str) and to_status in S.__members__ and S(to_status) in _ELSEWHERE:
        message = f"变更后状态：{_ELSEWHERE[S(to_status)]}"
        raise RuleViolation(message, details=[{"field": "to_status", "message": message}])
    if not isinstance(to_status, str) or to_status not in S.__members__ or S(to_status) not in CHANGE_LABELS:
        message = "变更后状态：应为休学（suspended）、复学（active）、辍学（dropped_out）或死亡（deceased）"
        raise RuleViolation(message, details=[{"field": "to_status", "message": message}])


def for_filing(session: Session, *, actor: User, student_id: int) -> Student:
    """The student, if `actor` is the registrar of their school; raises otherwise."""
    student = students.get_student(session, actor=actor, student_id=student_id)
    if not holds(actor, Role.school_registrar, student.school):
        raise PermissionDenied(msg("只有本校学籍管理员可以申请学籍异动"))
    return student


def file_change(session: Session, *, actor: User, student_id: int, to_status: Any, effective_month: Any,
                reason: Any) -> tuple[Student, str]:
    """The registrar asks for a change of their school's student; returns the student and the clean reason."""
    student = for_filing(session, actor=actor, student_id=student_id)
    reason = check_request(session, student=student, to_status=to_status, effective_month=effective_month,
                           reason=reason)
    process_guards.refuse_if_open_request(session, student=student)
    return student, reason


def check_request(session: Session, *, student: Student, to_status: Any, effective_month: Any,
                  reason: Any) -> str:
    """A requested change the registry would make once approved: allowed from the student's status,
    in a month that is not before the current enrolment (nor within months already paid)."""
    _requestable(to_status)
    return student_status.check_change(session, student=student, to_status=to_status,
                                       effective_month=effective_month, reason=reason)


def today_month(today: date) -> str:
    return f"{today.year}-{today.month:02d}"


def boarding_change_label(student: Student, boarding_mode: str, boarding_allowance: bool) -> str:
    """What a 就读方式/一补变更 changes, as the reviewers read it: 就读方式 走读 → 住校，不享受一补 → 享受一补."""
    parts = []
    if boarding_mode != student.boarding_mode:
        parts.append(f"就读方式 {student_status.mode_label(student.boarding_mode)} → {student_status.mode_label(boarding_mode)}")
    if boarding_allowance != student.boarding_allowance:
        parts.append(f"{student_status.allowance_label(student.boarding_allowance)} → "
                     f"{student_status.allowance_label(boarding_allowance)}")
    return "，".join(parts)


def file_boarding_change(session: Session, *, actor: User, student_id: int, boarding_mode: Any,
                         boarding_allowance: Any, effective_month: Any, reason: Any) -> tuple[Student, dict[str, Any]]:
    """The registrar asks to change how their school's active student attends and whether they get 一补 from a
    month on; a value not given stays as it is. Returns the student and the request as the workflow keeps it."""
    student = for_filing(session, actor=actor, student_id=student_id)
    mode = student.boarding_mode if boarding_mode is None else boarding_mode
    allowance = student.boarding_allowance if boarding_allowance is None else boarding_allowance
    reason = student_status.check_boarding(session, student=student, boarding_mode=mode, boarding_allowance=allowance,
                                           effective_month=effective_month, reason=reason)
    process_guards.refuse_if_open_request(session, student=student)
    return student, {"boarding_mode": mode, "boarding_allowance": allowance, "effective_month": effective_month,
                     "reason": reason, "change_label": boarding_change_label(student, mode, allowance)}
