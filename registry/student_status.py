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

就读方式/一补变更 (`change_boarding`): an active student's boarding mode and 一补 change from a month on,
again once the county approved it (Art. 14: it changes the counts of boarders and of 一补). The record
takes the new values and `restate_periods` splits the enrolment period at that month, so the months
before it stay counted and paid as they were.
"""

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access import mask_id_number
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.errors import Conflict, InvalidTransition, NotFound, RuleViolation, join_messages, msg
from registry.org_units import county_of
from registry.rules.student import DAY_STUDENT
from registry.students import (
    STATUS_LABELS,
    EnrolmentPeriod,
    Student,
    StudentStatus,
    check_duplicates,
    previous_month,
    restate_periods,
)
from registry.subsidy import Pupil, RateKind, rate_book
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
    return _month_and_reason(effective_month, reason, problems)


def _month_and_reason(effective_month: object, reason: object, problems: list[dict[str, object]]) -> str:
    """Adds the problems of the month and the reason to `problems`, raises if there are any, else the clean reason."""
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
    period = EnrolmentPeriod.opening(student, student.school, month, instance_id=instance_id)
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


# 就读方式/一补变更 ----------------------------------------------------------------------------------

def allowance_label(allowance: bool) -> str:
    return "享受一补" if allowance else "不享受一补"


def mode_label(boarding_mode: str) -> str:
    return load_code_tables().label("boarding_mode", boarding_mode) or boarding_mode


def boarding_label(boarding_mode: str, boarding_allowance: bool) -> str:
    """走读、不享受一补: how a pupil attends and whether they get 一补, as a person reads it."""
    return f"{mode_label(boarding_mode)}、{allowance_label(boarding_allowance)}"


def _boarding_input(boarding_mode: object, boarding_allowance: object, effective_month: object, reason: object) -> str:
    problems: list[dict[str, object]] = []
    if not isinstance(boarding_mode, str) or not load_code_tables().contains("boarding_mode", boarding_mode):
        problems.append({"field": "boarding_mode", "message": msg("就读方式：“{boarding_mode}”不是有效的代码（1 走读，2 住校）",
                                                                  boarding_mode=boarding_mode)})
    if not isinstance(boarding_allowance, bool):
        problems.append({"field": "boarding_allowance", "message": msg("享受一补：应为“是”或“否”")})
    return _month_and_reason(effective_month, reason, problems)


def _pays_day_pupils(session: Session, student: Student, month: str) -> bool:
    """Whether the county pays 一补 to day pupils of the student's level in `month` (a rate of its own)."""
    kind = RateKind.allowance_day_junior if Pupil(student.grade, DAY_STUDENT, True).junior else RateKind.allowance_day_primary
    return rate_book(session, county_of(session, student.school)).rate(kind, month) is not None


def check_boarding(session: Session, *, student: Student, boarding_mode: object, boarding_allowance: object,
                   effective_month: object, reason: object) -> str:
    """The checks of `change_boarding` without writing anything, for a request filed now and applied after
    its approvals (`change_boarding` checks again then). Returns the cleaned reason."""
    reason = _boarding_input(boarding_mode, boarding_allowance, effective_month, reason)
    assert isinstance(boarding_mode, str) and isinstance(boarding_allowance, bool) and isinstance(effective_month, str)
    if student.status != S.active:
        raise InvalidTransition(msg("该生现为“{status}”，只有在籍学生可以变更就读方式或享受一补", status=_label(student.status)),
                                details=[{"field": "student_id", "message": msg("学生：不是在籍学生")}])
    if (boarding_mode, boarding_allowance) == (student.boarding_mode, student.boarding_allowance):
        current = boarding_label(student.boarding_mode, student.boarding_allowance)
        raise RuleViolation(msg("就读方式和享受一补都与现在相同（{current}），没有要变更的内容", current=current),
                            details=[{"field": "boarding_mode", "message": msg("就读方式、享受一补：至少变更一项")}])
    # The rule of registry/rules/student.py (day_student), here an error: approving 一补 that no month would pay
    # only makes the 一补 count wrong (Art. 26: the county checks the 一补 numbers).
    if boarding_allowance and boarding_mode == DAY_STUDENT and not _pays_day_pupils(session, student, effective_month):
        raise RuleViolation(msg("享受一补：一补只补助寄宿生，本县自 {month} 起未对走读生发放一补；改为走读的，请同时取消一补",
                                month=effective_month),
                            details=[{"field": "boarding_allowance", "message": msg("享受一补：本县不对走读生发放一补")}])
    opened = session.scalars(select(EnrolmentPeriod.from_month).where(EnrolmentPeriod.student_id == student.id,
                                                                      EnrolmentPeriod.to_month.is_(None)))
    for from_month in opened:
        if effective_month < from_month:
            raise _before_period(effective_month, from_month)
    return reason


def change_boarding(session: Session, *, student_id: int, boarding_mode: str, boarding_allowance: bool,
                    effective_month: str, reason: str, actor: User | None, instance_id: int | None = None) -> Student:
    """Set an active student's boarding mode and 一补 from `effective_month` (YYYY-MM) on; earlier months keep theirs."""
    student = session.get(Student, student_id, with_for_update={"of": Student}, populate_existing=True)
    if student is None:
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    reason = check_boarding(session, student=student, boarding_mode=boarding_mode,
                            boarding_allowance=boarding_allowance, effective_month=effective_month, reason=reason)
    before: dict[str, object] = {"boarding_mode": student.boarding_mode, "boarding_allowance": student.boarding_allowance}
    after: dict[str, object] = {"boarding_mode": boarding_mode, "boarding_allowance": boarding_allowance,
                                "effective_month": effective_month}
    student.boarding_mode, student.boarding_allowance = boarding_mode, boarding_allowance
    periods = restate_periods(session, student, effective_month, instance_id=instance_id)
    if periods is not None:
        before["enrolment_periods"], after["enrolment_periods"] = periods
    record(session, actor=actor, action="student.status_change", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, instance_id=instance_id, before=before, after=after, reason=reason)
    return student
