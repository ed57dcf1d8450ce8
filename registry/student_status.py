"""Status changes of a confirmed student (学籍异动) and what they do to the subsidy months.

`change_status` is what the status_change process (休学 suspend, 复学 resume, 辍学 dropout, 毕业
graduate, 死亡 death) and student_transfer out of the county call once their approvals are complete:
the process lanes decided who asks and who approves, so this checks the transition and the months,
not the actor's role.

Subsidy months. An enrolment period pays for every month M with from_month <= M <= to_month
(to_month None: open, still paid) — `EnrolmentPeriod.covers`. A change effective in month M means M
is no longer subsidised (Art. 15: 从变更之日(月)起不再享受): leaving 在籍 closes the open period with
to_month = the month before M. A change in the period's first month leaves to_month one month before
from_month, a period covering no month, which that test needs no special case for. Resuming opens a
new period from M at the same school; M must lie after the last period, so no month is paid twice.

Transitions (`TRANSITIONS`):
- 在籍 active → 休学 suspended, 辍学 dropped_out, 毕业 graduated, 死亡 deceased, 转出 transferred_out
  (out of the county; an in-county transfer moves the record to the new school instead);
- 休学 suspended → 在籍 active (复学), 辍学 dropped_out, 死亡 deceased;
- 辍学 dropped_out → 在籍 active: re-entry (控辍保学, 劝返复学). The same record comes back, with its
  history, rather than a second record under the same ID (Art. 7 一人一号), and only through a
  process the county approves, like any resumption.
Everything else is final here: 毕业, 转出, 死亡 and 作废 records stay as they are, and a pending record
is confirmed or voided by student_intake. A student coming back into the county is a new intake.
"""

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access import mask_id_number
from registry.audit import record
from registry.errors import Conflict, InvalidTransition, NotFound, RuleViolation, join_messages, msg
from registry.students import (
    STATUS_LABELS,
    EnrolmentPeriod,
    Student,
    StudentStatus,
    check_duplicates,
    previous_month,
)
from registry.users import User

S = StudentStatus
TRANSITIONS: dict[StudentStatus, frozenset[StudentStatus]] = {
    S.active: frozenset({S.suspended, S.dropped_out, S.graduated, S.deceased, S.transferred_out}),
    S.suspended: frozenset({S.active, S.dropped_out, S.deceased}),
    S.dropped_out: frozenset({S.active}),
}
REASON_MAX = 500
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])", re.ASCII)
_LABELS = {str(status): label for status, label in STATUS_LABELS.items()}
PeriodRef = dict[str, str | None]


def _label(status: str) -> str:
    return _LABELS.get(status, status)


def check_input(to_status: str, effective_month: str, reason: str | None) -> str:
    problems = []
    if to_status not in _LABELS:
        problems.append({"field": "to_status", "message": msg("变更后状态：“{to_status}”不是学生状态", to_status=to_status)})
    if not isinstance(effective_month, str) or not _MONTH.fullmatch(effective_month):
        problems.append({"field": "effective_month", "message": msg("变更年月：“{effective_month}”不是有效年月（应为 YYYY-MM）",
                                                                    effective_month=effective_month)})
    clean = reason.strip() if isinstance(reason, str) else ""
    if not clean:
        problems.append({"field": "reason", "message": msg("变更原因：必填")})
    elif len(clean) > REASON_MAX:
        problems.append({"field": "reason", "message": msg("变更原因：不能超过 {reason_max} 字", reason_max=REASON_MAX)})
    if problems:
        raise RuleViolation(msg("学籍异动信息有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    return clean


def _period_ref(period: EnrolmentPeriod) -> PeriodRef:
    return {"school_code": period.school.code, "from_month": period.from_month, "to_month": period.to_month}


def change_status(session: Session, *, student_id: int, to_status: str, effective_month: str, reason: str,
                  actor: User | None, instance_id: int | None = None) -> Student:
    """Move a confirmed student to `to_status` from `effective_month` (YYYY-MM) and adjust the enrolment periods."""
    reason = check_input(to_status, effective_month, reason)
    target = S(to_status)
    student = session.get(Student, student_id, with_for_update={"of": Student}, populate_existing=True)
    if student is None:
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    current = S(student.status)
    if target not in TRANSITIONS.get(current, frozenset()):
        raise _no_transition(current, target)
    periods = list(session.scalars(
        select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
        .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
        .with_for_update(of=EnrolmentPeriod).execution_options(populate_existing=True)))
    before: dict[str, object] = {"status": current}
    after: dict[str, object] = {"status": target, "effective_month": effective_month}
    if target == S.active:
        after["enrolment_period"] = _open_period(session, student, periods, effective_month, instance_id)
    elif current == S.active:
        changed = _close_periods(periods, effective_month)
        if changed:
            before["enrolment_period"], after["enrolment_period"] = changed
    student.status = target
    try:
        session.flush()
    except IntegrityError as err:
        # Art. 7: the unique index on active ID numbers caught a record activated concurrently.
        raise _live_duplicate(student) from err
    session.expire(student, ["periods"])
    record(session, actor=actor, action="student.status_change", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, instance_id=instance_id, before=before, after=after, reason=reason)
    return student


def _close_periods(periods: list[EnrolmentPeriod], month: str) -> tuple[PeriodRef, PeriodRef] | None:
    """Art. 15: the open period ends with the month before the change; returns its before and after."""
    open_periods = [p for p in periods if p.to_month is None]
    for period in open_periods:
        if month < period.from_month:
            raise _before_period(month, period.from_month)
    if not open_periods:
        return None
    before = _period_ref(open_periods[-1])
    for period in open_periods:
        period.to_month = previous_month(month)
    return before, _period_ref(open_periods[-1])


def _open_period(session: Session, student: Student, periods: list[EnrolmentPeriod], month: str,
                 instance_id: int | None) -> PeriodRef:
    """复学 / re-entry: a new period from `month` at the same school, after every month already counted."""
    last = max((p.to_month for p in periods if p.to_month is not None), default=None)
    if last is not None and month <= last:
        raise _already_counted(month, last)
    if check_duplicates(session, student_id=student.id)["conflict"]:
        raise _live_duplicate(student)
    period = EnrolmentPeriod(student_id=student.id, school_id=student.school_id, school=student.school,
                             from_month=month, instance_id=instance_id)
    session.add(period)
    return _period_ref(period)


def _live_duplicate(student: Student) -> Conflict:
    return Conflict(msg("身份证件号 {id_number} 在县内已有在籍或待审核的学籍记录，不能恢复在籍（一人一号，办法第七条）",
                        id_number=mask_id_number(student.id_number)),
                    details=[{"field": "id_number", "message": msg("身份证件号：县内已有在籍记录")}])


def _no_transition(current: StudentStatus, target: StudentStatus) -> InvalidTransition:
    hint = "；作废请用“作废”功能" if target == S.voided else ""
    return InvalidTransition(msg("学生状态不能从“{current}”变为“{target}”{hint}",
                                 current=_label(current), target=_label(target), hint=hint),
                             details=[{"field": "to_status",
                                       "message": msg("变更后状态：不能从“{current}”变为“{target}”",
                                                      current=_label(current), target=_label(target))}])


def _before_period(month: str, from_month: str) -> RuleViolation:
    return RuleViolation(msg("变更年月：{month} 早于本次在籍起始年月 {from_month}", month=month, from_month=from_month),
                         details=[{"field": "effective_month",
                                   "message": msg("变更年月：不能早于本次在籍起始年月 {from_month}", from_month=from_month)}])


def _already_counted(month: str, last: str) -> RuleViolation:
    return RuleViolation(msg("变更年月：{month} 不晚于上一段在籍的截止年月 {last}，同一个月不能重复计算", month=month, last=last),
                         details=[{"field": "effective_month", "message": msg("变更年月：应晚于上一段在籍的截止年月 {last}", last=last)}])


def check_change(session: Session, *, student: Student, to_status: str, effective_month: str,
                 reason: str | None) -> str:
    """The checks of `change_status` without writing anything, for a change requested now and applied
    after its approvals (`change_status` checks again then). Returns the cleaned reason."""
    reason = check_input(to_status, effective_month, reason)
    current, target = S(student.status), S(to_status)
    if target not in TRANSITIONS.get(current, frozenset()):
        raise _no_transition(current, target)
    periods = list(session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)))
    if target == S.active:
        last = max((p.to_month for p in periods if p.to_month is not None), default=None)
        if last is not None and effective_month <= last:
            raise _already_counted(effective_month, last)
        if check_duplicates(session, student_id=student.id)["conflict"]:
            raise _live_duplicate(student)
    elif current == S.active:
        for period in periods:
            if period.to_month is None and effective_month < period.from_month:
                raise _before_period(effective_month, period.from_month)
    return reason
