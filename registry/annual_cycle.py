"""秋季学期实名制工作 (Art. 13, 16, 17): each autumn, one annual_cycle instance per beneficiary school.

`arm` creates the instances of a school year; each waits on its BPMN timer start event until the
county's start day (county_policy.cycle_start, 1 September unless the county says otherwise), then the
school's three tasks open, due 9-10 and 9-15 of that school year as the BPMN says (`due_from`). The
row per school and year makes arming idempotent: a second beat, or a second worker, adds nothing.
Every deadline here (the report's, the latest start day) is read from the deployed BPMN, never written in code.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ForeignKey, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine import runtime
from engine.definitions import Definition
from engine.timers import WorkingDays, due_at, parse_due
from registry import report_submissions, workflows, working_days
from registry.audit import record
from registry.county_policy import policy_of
from registry.db import Base, JSONType, UTCDateTime, utcnow
from registry.errors import Message, NotFound, RuleViolation, msg
from registry.flows import StartPlan
from registry.org_units import OrgKind, OrgUnit, county_of
from registry.schools import School
from registry.settings import local_zone
from registry.students import LIVE_STATUSES, Student, StudentStatus
from registry.users import User

PROCESS_ID = "annual_cycle"
ROSTER_TASK = "upload_roster"
REPORT_TASK = "submit_report"
# From 1 August the coming school year is armed: its instances wait for the start day on their timer.
ARM_FROM = (8, 1)


class AnnualCycle(Base):
    __tablename__ = "annual_cycle"
    __table_args__ = (UniqueConstraint("school_id", "school_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    school_year: Mapped[int]
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the registrar confirmed on 新生录入与核对: counts of the year's new pupils at that moment.
    new_students: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    roster_filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    roster_filed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    # [{"id", "file_name"}]: the attachments sent with the latest roster round (a return asks for new ones);
    # once roster_filed_at is set, the scans the county accepted and filed. No round comes after the filing.
    roster_scans: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


def arm_year(today: date) -> int:
    """The school year to arm on `today`: the coming one from 1 August, else the running one."""
    return today.year if (today.month, today.day) >= ARM_FROM else today.year - 1


def starts_at(session: Session, county: OrgUnit, year: int) -> datetime:
    month, day = map(int, policy_of(session, county).cycle_start.split("-"))
    return datetime.combine(date(year, month, day), time(0), tzinfo=local_zone())


def _start_data(unit: OrgUnit, county: OrgUnit, year: int, begin: datetime) -> dict[str, Any]:
    return {"school_code": unit.code, "school_name": unit.name, "county_code": county.code, "school_year": year,
            "cycle_start": begin.isoformat()}


def _deployed(session: Session) -> Definition | None:
    """The definition new instances start on: the newest annual_cycle version in use; None if there is none."""
    try:
        return workflows.definition_of(workflows.latest_version(session, PROCESS_ID))
    except NotFound:
        return None


def latest_start(session: Session) -> tuple[int, int]:
    """The last (month, day) the cycle may start: the earliest calendar-day deadline (`--09-10`) among the
    deployed version's tasks, so that none is due before it opens; 31 December when none is a calendar day."""
    definition = _deployed(session)
    days = []
    for info in definition.user_tasks.values() if definition else ():
        try:
            parsed = parse_due(info.due) if info.due else None
        except ValueError:
            continue
        if isinstance(parsed, tuple):
            days.append(parsed)
    return min(days, default=(12, 31))


def start_day_refusal(session: Session, value: object) -> Message | None:
    """Why `value` cannot be the county's start day (county_policy.cycle_start), or None: an MM-DD from the
    day the year is armed (its instances must exist first) to `latest_start`."""
    latest = latest_start(session)
    if isinstance(value, str) and len(value) == 5 and value[2] == "-":
        try:
            day = date.fromisoformat(f"2024-{value}")  # a leap year, so 02-29 parses; it is refused by range anyway
        except ValueError:
            day = None
        if day is not None and ARM_FROM <= (day.month, day.day) <= latest:
            return None
    return msg("秋季学期工作开始日：应为 MM-DD，在 8 月 1 日到 {month} 月 {day} 日之间（不晚于流程规定的最早截止日）",
               month=latest[0], day=latest[1])


def report_dues(session: Session, *, units: list[OrgUnit], year: int) -> dict[int, datetime | None]:
    """When each school's report of the school year is due (Art. 17), by org unit id, as the BPMN says: the due
    time of the school's own 上报常规统计报表 task in that year's instance (the first round's: the first
    submission decides lateness); for a school whose cycle has not opened that task (never armed, or still
    waiting for its start day), what the newest version in use gives from its county's start day. None: no due."""
    dues: dict[int, datetime | None] = dict(session.execute(
        select(AnnualCycle.school_id, workflows.HumanTask.due_at)
        .join(workflows.HumanTask, workflows.HumanTask.instance_id == AnnualCycle.instance_id)
        .where(AnnualCycle.school_year == year, AnnualCycle.school_id.in_([u.id for u in units]),
               workflows.HumanTask.task_id == REPORT_TASK)
        .order_by(workflows.HumanTask.id.desc())).all())  # the last written, the first task, wins
    by_county: dict[str, datetime | None] = {}
    for unit in units:
        if unit.id not in dues:
            key = unit.path.strip("/").split("/")[0]
            if key not in by_county:
                by_county[key] = _deployed_report_due(session, county_of(session, unit), year)
            dues[unit.id] = by_county[key]
    return dues


def _deployed_report_due(session: Session, county: OrgUnit, year: int) -> datetime | None:
    definition = _deployed(session)
    info = definition.user_tasks.get(REPORT_TASK) if definition else None
    if info is None or not info.due:
        return None
    is_working = (working_days.calendar_of(session, county).is_working
                  if isinstance(parse_due(info.due), WorkingDays) else None)
    # The task opens at the start day, which is also what `due_from` names (cycle_start): either way the
    # deadline counts from there.
    return due_at(starts_at(session, county, year), info.due, local_zone(), is_working)


def arm(session: Session, *, now: datetime | None = None) -> list[int]:
    """Start the school year's annual_cycle for every beneficiary school that has none yet; returns the new
    instance ids. The caller commits."""
    now = now or utcnow()
    year = arm_year(now.astimezone(local_zone()).date())
    armed = set(session.scalars(select(AnnualCycle.school_id).where(AnnualCycle.school_year == year)))
    # 受益学校: the schools that serve meals (a school without a meal model has no beneficiaries).
    schools = [s for s in session.scalars(select(School).join(School.org_unit)
                                          .where(School.meal_model.is_not(None), OrgUnit.kind == OrgKind.school)
                                          .order_by(OrgUnit.code))
               if s.org_unit_id not in armed]
    started = []
    counties: dict[int, OrgUnit] = {}
    for school in schools:
        unit = school.org_unit
        county = counties.setdefault(int(unit.path.strip("/").split("/")[0]), county_of(session, unit))
        begin = starts_at(session, county, year)
        try:
            with session.begin_nested():  # another worker armed it meanwhile: skip this school, keep the rest
                cycle = AnnualCycle(school_id=unit.id, school_year=year, starts_at=begin)
                session.add(cycle)
                session.flush()
                plan = StartPlan(
                    subject=cycle, subject_type="annual_cycle", subject_id=cycle.id,
                    subject_label=f"{unit.name} {year}–{year + 1} 学年秋季学期实名制工作", org_unit=unit,
                    role="school_registrar", warnings=[], data=_start_data(unit, county, year, begin))
                instance = workflows.start_by_system(session, process_id=PROCESS_ID, plan=plan, now=now)
                cycle.instance_id = instance.id
                session.flush()
        except IntegrityError:
            continue
        started.append(instance.id)
    return started


def retime(session: Session, *, actor: User | None, county: OrgUnit, now: datetime | None = None) -> list[int]:
    """The county moved its start day: each of its instances still waiting for the old day waits for the new
    one (its `cycle_start` and its instance_timer row); returns their ids. A cycle that began keeps its dates.

    Spiff keeps a timer's target once it has computed it, so the waiting state is made afresh, as `arm` would
    make it now, on the instance's own version. Sound while nothing but the start event has happened: no task
    was ever opened, checked under the instance's lock."""
    now = now or utcnow()
    waiting = session.execute(
        select(AnnualCycle, OrgUnit).join(OrgUnit, OrgUnit.id == AnnualCycle.school_id)
        .join(workflows.InstanceTimer, workflows.InstanceTimer.instance_id == AnnualCycle.instance_id)
        .where(OrgUnit.path.startswith(county.path)).order_by(AnnualCycle.id)).all()
    moved = []
    for cycle, unit in waiting:
        begin = starts_at(session, county, cycle.school_year)
        if cycle.instance_id is None or begin == cycle.starts_at:
            continue
        instance = workflows.lock_instance(session, cycle.instance_id)
        opened = session.scalar(select(func.count()).select_from(workflows.HumanTask)
                                .where(workflows.HumanTask.instance_id == instance.id))
        if instance.status != workflows.InstanceStatus.running or opened:
            continue
        # A clock before the new day: the timer is set here, never fired; the timer poll fires it (at once if
        # the day has passed), as it fires every other.
        workflow = runtime.start(workflows.definition_of_instance(session, instance),
                                 _start_data(unit, county, cycle.school_year, begin), services={},
                                 now=min(now, begin - timedelta(seconds=1)))
        workflows.save_state(session, instance, workflow, actor=actor, now=now)
        before = cycle.starts_at
        cycle.starts_at = begin
        record(session, actor=actor, action="annual_cycle.retime", object_type="annual_cycle", object_id=cycle.id,
               org_unit_id=cycle.school_id, instance_id=instance.id,
               before={"starts_at": before.astimezone(local_zone()).isoformat()},
               after={"starts_at": begin.isoformat()})
        moved.append(instance.id)
    session.flush()
    return moved


def _cycle(session: Session, instance_id: int) -> AnnualCycle:
    cycle = cycle_of(session, instance_id=instance_id)
    if cycle is None:
        raise RuleViolation(msg("找不到该学年的秋季学期工作记录"))
    return cycle


def new_student_counts(session: Session, *, school_id: int, year: int) -> dict[str, int]:
    """This school year's new pupils at the school (入学年月 from September on), by where they stand."""
    rows = session.execute(select(Student.status, func.count()).where(
        Student.school_id == school_id, Student.enrolled_month >= f"{year}-09",
        Student.status.in_([*LIVE_STATUSES, StudentStatus.voided])).group_by(Student.status)).all()
    counts = {str(status): n for status, n in rows}
    return {"active": counts.get(StudentStatus.active, 0), "pending": counts.get(StudentStatus.pending, 0),
            "voided": counts.get(StudentStatus.voided, 0)}


def confirm_new_students(session: Session, *, actor: User | None, instance_id: int, comment: str | None) -> None:
    """Art. 13 新生信息录入与核对: the registrar confirms the year's new pupils are entered and checked.
    Refused while any of them still waits for the school's own step, since that is not 核对完毕."""
    cycle = _cycle(session, instance_id)
    counts = new_student_counts(session, school_id=cycle.school_id, year=cycle.school_year)
    waiting = session.scalar(select(func.count()).select_from(workflows.HumanTask).join(
        workflows.ProcessInstance, workflows.ProcessInstance.id == workflows.HumanTask.instance_id).where(
        workflows.ProcessInstance.process_id.in_(("student_intake", "batch_intake")),
        workflows.HumanTask.org_unit_id == cycle.school_id, workflows.HumanTask.status == "open",
        workflows.HumanTask.role == "school_registrar"))
    if waiting:
        raise RuleViolation(msg("本校还有 {waiting} 项新生录入待学籍管理员修改后提交，请先办完再确认", waiting=waiting),
                            details=[{"field": "confirmed", "message": msg("还有待修改的新生录入")}])
    cycle.new_students = {**counts, "confirmed_at": utcnow().isoformat()}
    record(session, actor=actor, action="annual_cycle.new_students", object_type="annual_cycle", object_id=cycle.id,
           org_unit_id=cycle.school_id, instance_id=instance_id, after=counts, reason=comment or None)


def check_roster_scan(session: Session, *, actor: User | None, instance_id: int, scan_ids: list[int]) -> None:
    """Art. 16: the signed and stamped roster comes back as scans attached to this round's roster task
    (after a return, new scans: the county saw the old ones)."""
    # registry.attachments imports registry.workflows, which gathers the flows that call this.
    from registry.attachments import Attachment

    own = dict(session.execute(
        select(Attachment.id, Attachment.file_name)
        .join(workflows.HumanTask, workflows.HumanTask.id == Attachment.task_id)
        .where(Attachment.instance_id == instance_id, workflows.HumanTask.task_id == ROSTER_TASK,
               workflows.HumanTask.status == "open")).all())
    if not scan_ids or any(i not in own for i in scan_ids):
        raise RuleViolation(msg("请上传监护人签字、学校盖章的花名册扫描件（PDF 或图片）"),
                            details=[{"field": "scan", "message": msg("缺少本次上传的花名册扫描件")}])
    cycle = _cycle(session, instance_id)
    cycle.roster_scans = [{"id": i, "file_name": own[i]} for i in scan_ids]
    record(session, actor=actor, action="annual_cycle.roster", object_type="annual_cycle", object_id=cycle.id,
           org_unit_id=cycle.school_id, instance_id=instance_id, after={"scans": [own[i] for i in scan_ids]})


def submit_report(session: Session, *, actor: User | None, instance_id: int, now: datetime) -> int:
    """Art. 17: the school-year report, frozen as submitted (registry/report_submissions.py)."""
    cycle = _cycle(session, instance_id)
    unit = session.get(OrgUnit, cycle.school_id)
    if actor is None or unit is None:
        raise RuleViolation(msg("报表须由学校上报"))
    snapshot = report_submissions.submit_school_report(session, actor=actor, school_code=unit.code,
                                                       year=cycle.school_year, instance_id=instance_id, now=now)
    return snapshot.id


def file_roster(session: Session, *, actor: User | None, instance_id: int, now: datetime) -> None:
    """Art. 16 送县级学生营养办备案: the county accepted roster and report; the roster is on file, with the
    scans of the round it accepted (a returned round's scans stay attached to the instance, not filed)."""
    cycle = _cycle(session, instance_id)
    cycle.roster_filed_at = now
    cycle.roster_filed_by_id = actor.id if actor else None
    record(session, actor=actor, action="annual_cycle.filed", object_type="annual_cycle", object_id=cycle.id,
           org_unit_id=cycle.school_id, instance_id=instance_id,
           after={"school_year": cycle.school_year, "scans": cycle.roster_scans or []})


def filed_rosters(session: Session, *, units: list[OrgUnit], year: int) -> dict[str, AnnualCycle]:
    """The schools' rosters on file for the school year (Art. 16 备案), by school code: when, and which scans.
    The caller has the units from a report in its own scope."""
    codes = {u.id: u.code for u in units}
    return {codes[c.school_id]: c for c in session.scalars(
        select(AnnualCycle).where(AnnualCycle.school_id.in_(codes), AnnualCycle.school_year == year,
                                  AnnualCycle.roster_filed_at.is_not(None)))}


def cycle_of(session: Session, *, instance_id: int) -> AnnualCycle | None:
    return session.scalars(select(AnnualCycle).where(AnnualCycle.instance_id == instance_id)).one_or_none()
