"""Deadline reminders on a real database with a controlled clock: who hears, when, once; overdue
notices each working day; escalation one level up (school → township, township → county reviewer,
county → county admin); moving a due date; daily digests; the county's working-day calendar."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from registry import applications, notifications, process_admin, reminders, workflows, working_days
from registry.audit import AuditEntry
from registry.errors import InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.file_store import LocalFileStore
from registry.notifications import Channel, Kind, Notification, Preferences, Status
from registry.org_units import find_org_unit
from registry.task_reminders import TaskReminder
from registry.users import Role, create_user, grant_role
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from registry.working_days import CalendarNotCovered
from tests.factories import SCHOOL_1, admit, student_data, user

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _earlier_tasks_stay_quiet(session: Session) -> None:
    """Tasks other tests committed to the shared database keep their reminder rows: not this test's to scan
    (undone with the test's transaction)."""
    session.execute(update(TaskReminder).values(next_at=None))
    session.commit()


def local(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE)


# Tuesday 1 September 2026, 10:00 in the county: the principal's review (P3D) is due Friday 9-4 10:00.
OPENED = local(9, 1, 10)


def submit(session: Session, *, seq: int = 301, opened: datetime = OPENED) -> HumanTask:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(seq=seq)}, now=opened)
    task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()
    assert task.task_id == "review_intake" and task.due_at == opened + timedelta(days=3)
    return task


def sent_to(session: Session, username: str, *, kind: Kind | None = None, channel: Channel = Channel.in_app) -> list[Notification]:
    query = select(Notification).where(Notification.recipient_id == user(session, username).id,
                                       Notification.channel == channel)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return list(session.scalars(query.order_by(Notification.id)))


def email(session: Session, username: str, *, digest: bool = False) -> None:
    notifications.update_preferences(session, actor=user(session, username), preferences=Preferences(
        email_address=f"{username}@school.example.cn", digest=digest))


def test_a_new_task_gets_its_reminder_row_and_the_first_look_sends_nothing(session: Session,
                                                                          sessions: sessionmaker[Session]) -> None:
    task = submit(session)
    row = session.get(TaskReminder, task.id)
    assert row is not None and row.next_at == OPENED and row.due_at == task.due_at
    session.commit()
    assert reminders.scan(sessions, now=OPENED + timedelta(minutes=1)) == []
    session.expire_all()
    assert session.get(TaskReminder, task.id).next_at == local(9, 3, 8)  # the day before, 8:00
    assert sent_to(session, "principal1") == []


def test_the_reminder_reaches_the_principal_in_app_and_by_email_exactly_once(session: Session,
                                                                            sessions: sessionmaker[Session]) -> None:
    email(session, "principal1")
    task = submit(session)
    session.commit()
    reminders.scan(sessions, now=OPENED)
    ids = reminders.scan(sessions, now=local(9, 3, 8, 5))
    (in_app,) = sent_to(session, "principal1")
    (mail,) = sent_to(session, "principal1", channel=Channel.email)
    assert ids == [mail.id]  # in-app needs no sending
    assert in_app.status == Status.sent and mail.status == Status.pending and mail.address == "principal1@school.example.cn"
    assert in_app.subject.startswith("【待办提醒】校长审核（张小明）") and "还有 1 天到期" in in_app.subject
    assert f"http://127.0.0.1:8000/tasks/{task.id}" in in_app.body and "2026年9月4日 10:00" in in_app.body
    assert in_app.dedup_key == f"task:{task.id}:before-1d@2026-09-04:user:{user(session, 'principal1').id}:in_app"

    # The same step again (a second worker, a replayed poll): nothing new.
    session.execute(TaskReminder.__table__.update().values(next_at=local(9, 3, 8)))
    session.commit()
    assert reminders.scan(sessions, now=local(9, 3, 8, 6)) == []
    assert len(sent_to(session, "principal1")) == 1


def test_reminders_go_to_every_holder_until_someone_claims_then_only_to_the_claimer(
        session: Session, sessions: sessionmaker[Session]) -> None:
    second = create_user(session, username="principal1b", display_name="副校长", password="password-123")
    grant_role(session, user=second, role=Role.school_principal, org_unit_code=SCHOOL_1)
    task = submit(session)
    session.commit()
    reminders.scan(sessions, now=OPENED)
    reminders.scan(sessions, now=local(9, 3, 9))
    assert len(sent_to(session, "principal1")) == 1 and len(sent_to(session, "principal1b")) == 1
    assert "尚未认领" in sent_to(session, "principal1")[0].body

    workflows.claim_task(session, actor=user(session, "principal1b"), task_id=task.id)
    session.commit()
    reminders.scan(sessions, now=local(9, 4, 9))
    assert len(sent_to(session, "principal1")) == 1
    (_, on_the_day) = sent_to(session, "principal1b")
    assert "今天到期" in on_the_day.subject and "由您认领" in on_the_day.body


def test_overdue_each_working_day_then_escalated_to_the_township_and_flagged_for_the_county(
        session: Session, sessions: sessionmaker[Session]) -> None:
    task = submit(session)
    session.commit()
    for day in (1, 3, 4, 5, 6, 7, 8):  # Sat 5 and Sun 6 are no working days
        reminders.scan(sessions, now=local(9, day, 9))
    overdue = sent_to(session, "principal1", kind=Kind.overdue)
    assert [n.dedup_key.split(":")[2] for n in overdue] == ["overdue@2026-09-07", "overdue@2026-09-08"]
    assert "已逾期 2 个工作日" in overdue[-1].subject
    assert sent_to(session, "township1") == []
    assert reminders.escalated_tasks(session, actor=user(session, "reviewer")) == []

    reminders.scan(sessions, now=local(9, 9, 9))  # the third working day overdue
    (notice,) = sent_to(session, "township1", kind=Kind.escalation)
    assert notice.subject == "【逾期上报】城关镇中心小学：校长审核已逾期 3 个工作日"
    assert "乡镇中心校管理员督办" in notice.body
    flagged = reminders.escalated_tasks(session, actor=user(session, "reviewer"))
    assert [t.id for t, _ in flagged] == [task.id]
    assert [t.id for t, _ in reminders.escalated_tasks(session, actor=user(session, "township1"))] == [task.id]
    assert reminders.escalated_tasks(session, actor=user(session, "principal2")) == []
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "task.escalate")) == 1

    reminders.scan(sessions, now=local(9, 10, 9))
    assert len(sent_to(session, "township1")) == 1  # escalated once
    assert len(sent_to(session, "principal1", kind=Kind.overdue)) == 4


def test_a_county_step_overdue_is_escalated_to_the_county_admin(session: Session,
                                                                 sessions: sessionmaker[Session]) -> None:
    review = submit(session, seq=305)
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id,
                            data={"decision": "approve"}, now=OPENED)
    confirm = session.scalars(select(HumanTask).where(HumanTask.instance_id == review.instance_id,
                                                      HumanTask.status == TaskStatus.open)).one()
    assert confirm.role == "county_reviewer" and confirm.due_at == OPENED + timedelta(days=5)  # Sunday 9-6
    session.commit()
    for day in (1, 7, 8):
        reminders.scan(sessions, now=local(9, day, 9))
    assert sent_to(session, "admin", kind=Kind.escalation) == []
    reminders.scan(sessions, now=local(9, 9, 9))  # the third working day overdue
    (notice,) = sent_to(session, "admin", kind=Kind.escalation)
    assert "已逾期 3 个工作日" in notice.subject and "县教育局系统管理员督办" in notice.body
    assert [t.id for t, _ in reminders.escalated_tasks(session, actor=user(session, "reviewer"))] == [confirm.id]


def township_step(session: Session) -> HumanTask:
    """A one-step process whose step is the township officer's (no shipped process opens one at once): the
    modeler's new-process template with its lane given to township_officer, due a day after it opens."""
    bpmn = (process_admin.NEW_PROCESS_TEMPLATE.replace("new_process", "rm_township_check")
            .replace('name="county_reviewer"', 'name="township_officer"').replace('value="P5D"', 'value="P1D"'))
    process_admin.deploy_version(session, actor=user(session, "processadmin"), bpmn=bpmn.encode(), note="测试乡镇环节")
    instance, _ = workflows.start_process(session, actor=user(session, "township1"), process_id="rm_township_check",
                                          data={}, now=OPENED)
    task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)).one()
    assert task.role == "township_officer" and task.org_unit.code == "520199101"
    assert task.due_at == OPENED + timedelta(days=1)  # Wednesday 9-2
    return task


def test_a_township_step_overdue_is_escalated_to_the_county_reviewer(session: Session,
                                                                      sessions: sessionmaker[Session]) -> None:
    task = township_step(session)
    session.commit()
    for day in (1, 3, 4):
        reminders.scan(sessions, now=local(9, day, 9))
    assert [n.dedup_key.split(":")[2] for n in sent_to(session, "township1", kind=Kind.overdue)] == [
        "overdue@2026-09-03", "overdue@2026-09-04"]
    assert sent_to(session, "reviewer", kind=Kind.escalation) == []

    reminders.scan(sessions, now=local(9, 7, 9))  # Monday: the third working day overdue
    (notice,) = sent_to(session, "reviewer", kind=Kind.escalation)
    assert notice.subject == "【逾期上报】城关镇：审核已逾期 3 个工作日"
    assert "县营养办审核员督办" in notice.body and notice.task_id == task.id
    assert sent_to(session, "admin", kind=Kind.escalation) == [] and sent_to(session, "township1", kind=Kind.escalation) == []
    assert [t.id for t, _ in reminders.escalated_tasks(session, actor=user(session, "reviewer"))] == [task.id]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "task.escalate")).one()
    assert user(session, "reviewer").id in entry.after["notified"]

    reminders.scan(sessions, now=local(9, 8, 9))
    assert len(sent_to(session, "reviewer", kind=Kind.escalation)) == 1  # escalated once


def test_a_make_up_working_day_gets_an_overdue_reminder_and_a_holiday_none(session: Session,
                                                                          sessions: sessionmaker[Session]) -> None:
    # Due Friday 9-18; Sunday 9-20 is a make-up working day (National Day), Friday 9-25 中秋节.
    task = submit(session, opened=local(9, 15, 10))
    session.commit()
    for day in (15, 19, 20, 21, 24, 25, 26):
        reminders.scan(sessions, now=local(9, day, 9))
    keys = [n.dedup_key.split(":")[2] for n in sent_to(session, "principal1", kind=Kind.overdue)]
    assert keys == ["overdue@2026-09-20", "overdue@2026-09-21", "overdue@2026-09-24"]
    assert session.get(TaskReminder, task.id).escalated_at == local(9, 24, 9)  # 20, 21, 22 … (9-22 not scanned: 3rd)


def test_a_county_holiday_is_no_working_day(session: Session, sessions: sessionmaker[Session]) -> None:
    county = find_org_unit(session, code="520199")
    working_days.set_day(session, actor=user(session, "admin"), county=county, day=date(2026, 9, 7), working=False,
                         note="县级民族节日放假")
    submit(session)
    session.commit()
    for day in (1, 7, 8):
        reminders.scan(sessions, now=local(9, day, 9))
    assert [n.dedup_key.split(":")[2] for n in sent_to(session, "principal1", kind=Kind.overdue)] == ["overdue@2026-09-08"]


def test_a_year_the_calendar_lacks_fails_loudly_and_county_admin_sees_why(session: Session,
                                                                         sessions: sessionmaker[Session]) -> None:
    # 2100: no chinese-calendar release will cover it (each covers the years announced so far), and still a
    # year the county may enter itself. The deadline is moved there the way a supervisor would move it.
    task = submit(session)
    moved_on = datetime(2099, 12, 28, 10, tzinfo=ZONE)  # a Monday
    reminders.change_due_date(session, actor=user(session, "township1"), task_id=task.id, due_on=date(2099, 12, 31),
                              reason="测试远期日历", now=moved_on)
    session.commit()
    reminders.scan(sessions, now=moved_on)  # the days before the deadline need no calendar
    reminders.scan(sessions, now=datetime(2100, 1, 4, 9, tzinfo=ZONE))  # overdue since Friday 2100-01-01
    row = session.get(TaskReminder, task.id)
    session.refresh(row)
    assert row.error is not None and "2100" in row.error and "chinese-calendar" in row.error
    assert [t.id for t, _ in reminders.reminder_errors(session, actor=user(session, "admin"))] == [task.id]
    assert sent_to(session, "principal1", kind=Kind.overdue) == []

    # The county enters 2100 itself: Monday to Friday, plus its own days.
    county = find_org_unit(session, code="520199")
    working_days.declare_year(session, actor=user(session, "admin"), county=county, year=2100,
                              note="按国务院办公厅 2100 年节假日安排录入")
    row.next_at = datetime(2100, 1, 4, 8, tzinfo=ZONE)
    session.commit()
    reminders.scan(sessions, now=datetime(2100, 1, 4, 9, tzinfo=ZONE))
    session.refresh(row)
    assert row.error is None
    assert [n.dedup_key.split(":")[2] for n in sent_to(session, "principal1", kind=Kind.overdue)] == ["overdue@2100-01-04"]


def test_a_closed_tasks_calendar_error_is_no_longer_listed(session: Session) -> None:
    task = submit(session)
    row = session.get(TaskReminder, task.id)
    assert row is not None
    row.error = "工作日历未包含 2100 年（chinese-calendar）"
    session.flush()
    admin = user(session, "admin")
    assert [t.id for t, _ in reminders.reminder_errors(session, actor=admin)] == [task.id]
    # Closed without the scan having cleaned up yet (as a migration to a version without the step leaves it).
    task.status = TaskStatus.cancelled
    session.flush()
    assert reminders.reminder_errors(session, actor=admin) == []


def test_the_working_day_calendar() -> None:
    calendar = working_days.WorkCalendar()
    assert calendar.is_working(date(2025, 9, 28))  # a Sunday, made up for National Day
    assert not calendar.is_working(date(2025, 10, 1))
    assert not calendar.is_working(date(2025, 9, 27))  # an ordinary Saturday
    with pytest.raises(CalendarNotCovered, match="2199"):
        calendar.is_working(date(2199, 3, 4))
    county = working_days.WorkCalendar(county_days={date(2025, 10, 1): True, date(2025, 9, 29): False},
                                       county_years=frozenset({2199}))
    assert county.is_working(date(2025, 10, 1)) and not county.is_working(date(2025, 9, 29))
    assert county.is_working(date(2199, 3, 4)) and not county.is_working(date(2199, 3, 2))  # Monday, Saturday


def test_only_county_admin_keeps_the_calendar_and_every_change_is_audited(session: Session) -> None:
    county = find_org_unit(session, code="520199")
    with pytest.raises(PermissionDenied):
        working_days.set_day(session, actor=user(session, "reviewer"), county=county, day=date(2026, 11, 3),
                             working=False, note="x")
    with pytest.raises(RuleViolation):
        working_days.set_day(session, actor=user(session, "admin"), county=county, day=date(2026, 11, 3),
                             working=False, note=" ")
    entry = working_days.set_day(session, actor=user(session, "admin"), county=county, day=date(2026, 11, 3),
                                 working=False, note="苗年")
    working_days.remove_day(session, actor=user(session, "admin"), county=county, day_id=entry.id)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("calendar.%"))).all()
    assert actions == ["calendar.day", "calendar.day_remove"]


def test_a_supervisor_moves_a_due_date_with_a_reason_and_the_reminders_start_again(
        session: Session, sessions: sessionmaker[Session]) -> None:
    task = submit(session)
    session.commit()
    for day in (1, 3, 4, 7, 8, 9):
        reminders.scan(sessions, now=local(9, day, 9))
    assert reminders.escalated_tasks(session, actor=user(session, "reviewer"))
    with pytest.raises(PermissionDenied):  # not one's own deadline
        reminders.change_due_date(session, actor=user(session, "principal1"), task_id=task.id,
                                  due_on=date(2026, 9, 15), reason="x", now=local(9, 9, 10))
    with pytest.raises(NotFound):
        reminders.change_due_date(session, actor=user(session, "principal2"), task_id=task.id,
                                  due_on=date(2026, 9, 15), reason="x", now=local(9, 9, 10))
    with pytest.raises(RuleViolation) as err:
        reminders.change_due_date(session, actor=user(session, "township1"), task_id=task.id,
                                  due_on=date(2026, 9, 1), reason="", now=local(9, 9, 10))
    assert {d["field"] for d in err.value.details} == {"reason", "due_date"}

    moved = reminders.change_due_date(session, actor=user(session, "township1"), task_id=task.id,
                                      due_on=date(2026, 9, 15), reason="校长外出培训", now=local(9, 9, 10))
    session.commit()
    assert moved.due_at == datetime(2026, 9, 15, 23, 59, 59, tzinfo=ZONE)
    assert reminders.escalated_tasks(session, actor=user(session, "reviewer")) == []
    (changed,) = sent_to(session, "principal1", kind=Kind.due_changed)
    assert "截止时间改为 2026年9月15日 23:59" in changed.subject and "校长外出培训" in changed.body
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "task.due_change")).one()
    assert entry.reason == "校长外出培训" and entry.after["due_at"].startswith("2026-09-15T23:59:59")

    reminders.scan(sessions, now=local(9, 9, 10, 1))
    reminders.scan(sessions, now=local(9, 14, 9))
    keys = [n.dedup_key.split(":")[2] for n in sent_to(session, "principal1", kind=Kind.reminder)]
    assert keys[-1] == "before-1d@2026-09-15"


def test_a_closed_task_is_not_reminded_and_its_row_goes(session: Session, sessions: sessionmaker[Session]) -> None:
    task = submit(session)
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=task.id,
                            data={"decision": "approve"}, now=local(9, 2))
    session.commit()
    reminders.scan(sessions, now=local(9, 3, 9))
    assert sent_to(session, "principal1") == []
    assert session.get(TaskReminder, task.id) is None
    with pytest.raises(InvalidTransition):
        reminders.change_due_date(session, actor=user(session, "township1"), task_id=task.id,
                                  due_on=date(2026, 9, 15), reason="x", now=local(9, 3))


def test_a_digest_collects_the_days_messages_into_one(session: Session, sessions: sessionmaker[Session]) -> None:
    email(session, "principal1", digest=True)
    submit(session, seq=301)
    submit(session, seq=303)
    session.commit()
    reminders.scan(sessions, now=OPENED)
    assert reminders.scan(sessions, now=local(9, 3, 8, 10)) == []  # held for the digest
    assert len(sent_to(session, "principal1")) == 2  # the bell does not wait
    held = sent_to(session, "principal1", channel=Channel.email)
    assert [n.status for n in held] == [Status.held, Status.held]

    (digest_id,) = reminders.scan(sessions, now=local(9, 3, 8, 40))
    digest = session.get(Notification, digest_id)
    assert digest.kind == Kind.digest and digest.status == Status.pending
    assert digest.subject == "【每日汇总】9月3日，您有 2 条通知" and "2. 【待办提醒】" in digest.body
    for n in held:
        session.refresh(n)
    assert {(n.status, n.digest_id) for n in held} == {(Status.digested, digest_id)}

    # Made after today's 8:30: they wait for tomorrow's digest.
    assert reminders.scan(sessions, now=local(9, 4, 8, 31)) == []
    (tomorrow,) = reminders.scan(sessions, now=local(9, 5, 8, 31))
    assert session.get(Notification, tomorrow).subject == "【每日汇总】9月5日，您有 2 条通知"


def test_the_initiator_hears_how_a_key_field_change_ended(session: Session, tmp_path: Path) -> None:
    now = datetime(2026, 3, 10, 2, tzinfo=UTC)
    student = admit(session, now=datetime(2023, 9, 20, tzinfo=UTC), seq=305)
    instance = applications.file_with_scan(
        session, actor=user(session, "registrar1"), process_id="key_field_change",
        data={"student_id": student.id, "changes": {"name": "王晓红"}, "reason": "户口簿登记为新姓名"},
        scan_name="申请书.pdf", scan=b"%PDF-1.4\n%%EOF\n", confirmed=True, store=LocalFileStore(tmp_path), now=now)
    task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=task.id,
                            data={"decision": "reject", "comment": "申请书未签字"}, now=now)
    (told,) = sent_to(session, "registrar1", kind=Kind.process_end)
    assert told.subject == f"【办理结果】关键信息变更（{student.name}）：申请被驳回，驳回意见：申请书未签字"
    assert told.link == f"/instances/{instance.id}"
    assert session.get(ProcessInstance, instance.id).status == "completed"
