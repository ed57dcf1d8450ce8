"""A real Celery worker with beat fires due BPMN timers from the database.

The clock is controlled through the service layer, not by editing rows: `start_process` and
`complete_task` take the unit of work's `now`, and the engine computes a timer's due time from
that clock and stores it in the instance state (engine/timers.py). So approving the review
"six days ago" leaves confirm_intake's real P5D boundary timer due yesterday, in the state and in
`instance_timer` alike. Backdating only the `instance_timer` row would not do: the worker fires
with `utcnow()` and the engine would find its own P5D not yet due.
"""

import signal
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry import process_admin, reminders, workflows, working_days
from registry.audit import AuditEntry
from registry.db import unit_of_work, utcnow
from registry.flows import StartPlan
from registry.notifications import Kind, Notification
from registry.org_units import find_org_unit
from registry.settings import local_zone
from registry.task_reminders import TaskReminder
from registry.workflows import HumanTask, InstanceStatus, InstanceTimer, ProcessInstance, TaskStatus
from tests.engine.samples import REVIEW_FORM, flow, probe_bpmn, script_task, user_task
from tests.factories import student_data, user
from tests.workers.conftest import kill_group, wait_until

INTAKE = Path(__file__).resolve().parents[2] / "processes" / "student_intake.bpmn"

CONFIRM_DAYS = 5  # confirm_overdue in processes/student_intake.bpmn


def intake_awaiting_confirmation(sessions: sessionmaker[Session], *, seq: int, opened: datetime) -> tuple[int, int]:
    """An intake approved by the principal at `opened`; returns (instance id, confirm_intake task id)."""
    with unit_of_work(sessions) as session:
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                              data={"student": student_data(seq=seq)}, now=opened)
        (review,) = open_tasks(session, instance.id)
        workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id,
                                data={"decision": "approve"}, now=opened)
        (confirm,) = open_tasks(session, instance.id)
        assert confirm.task_id == "confirm_intake"
        return instance.id, confirm.id


def open_tasks(session: Session, instance_id: int) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                        HumanTask.status == TaskStatus.open)).unique())


def is_overdue(sessions: sessionmaker[Session], task_id: int) -> bool:
    with sessions() as session:
        return bool(session.scalar(select(HumanTask.overdue).where(HumanTask.id == task_id)))


def timer_due(sessions: sessionmaker[Session], instance_id: int) -> datetime | None:
    with sessions() as session:
        return session.scalar(select(InstanceTimer.due_at).where(InstanceTimer.instance_id == instance_id))


def test_worker_marks_confirmation_overdue_when_its_timer_is_due(committed_sessions, start_worker) -> None:  # type: ignore[no-untyped-def]
    instance_id, task_id = intake_awaiting_confirmation(
        committed_sessions, seq=123, opened=utcnow() - timedelta(days=CONFIRM_DAYS + 1))
    due = timer_due(committed_sessions, instance_id)
    assert due is not None and due < utcnow()
    assert not is_overdue(committed_sessions, task_id)

    _, log = start_worker()
    wait_until(lambda: is_overdue(committed_sessions, task_id), what="confirm_intake marked overdue", log=log)

    assert timer_due(committed_sessions, instance_id) is None
    with committed_sessions() as session:
        (task,) = open_tasks(session, instance_id)
        assert task.id == task_id  # non-interrupting: the county can still confirm
        fired = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance_id,
                                                         AuditEntry.action == "process.timer")).all()
        assert len(fired) == 1
    assert "could not fire" not in log.read_text(errors="replace")


def test_worker_killed_while_idle_fires_on_restart_a_timer_that_came_due_meanwhile(committed_sessions, start_worker) -> None:  # type: ignore[no-untyped-def]
    first, first_task = intake_awaiting_confirmation(
        committed_sessions, seq=125, opened=utcnow() - timedelta(days=CONFIRM_DAYS + 1))
    worker, log = start_worker()
    wait_until(lambda: is_overdue(committed_sessions, first_task), what="the first timer fired", log=log)
    kill_group(worker)  # idle: nothing else is due
    assert worker.returncode == -signal.SIGKILL

    # Due one second from now, so it comes due while no worker runs.
    second, second_task = intake_awaiting_confirmation(
        committed_sessions, seq=127, opened=utcnow() - timedelta(days=CONFIRM_DAYS) + timedelta(seconds=1))
    due = timer_due(committed_sessions, second)
    assert due is not None
    wait_until(lambda: utcnow() > due, what="the second timer came due", timeout=10)
    assert not is_overdue(committed_sessions, second_task)

    _, log = start_worker()
    wait_until(lambda: is_overdue(committed_sessions, second_task), what="the second timer fired after restart",
               log=log)
    assert timer_due(committed_sessions, second) is None
    assert timer_due(committed_sessions, first) is None


def audit_count(sessions: sessionmaker[Session], instance_id: int, action: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.instance_id == instance_id, AuditEntry.action == action)) or 0


def polls_done(log: Path) -> int:
    return log.read_text(errors="replace").count("Task workflow.fire_due_timers[")


def instance_row(sessions: sessionmaker[Session], instance_id: int) -> ProcessInstance:
    with sessions() as session:
        found = session.get(ProcessInstance, instance_id)
        assert found is not None
        return found


def test_worker_killed_while_firing_fires_exactly_once_after_restart(committed_sessions, start_worker,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path) -> None:
    instance_id, task_id = intake_awaiting_confirmation(
        committed_sessions, seq=131, opened=utcnow() - timedelta(days=CONFIRM_DAYS + 1))
    version_before = instance_row(committed_sessions, instance_id).version_id
    block = tmp_path / "block"
    block.mkdir()
    blocking = [sys.executable, "-m", "tests.workers.blocking_worker"]

    worker, log = start_worker(blocking, MEALROLL_TEST_BLOCK_DIR=str(block))
    wait_until(lambda: list(block.glob("firing-*")) or worker.poll() is not None,
               what="the worker inside the timer's mark_overdue", log=log)
    assert worker.poll() is None, log.read_text(errors="replace")
    kill_group(worker)  # mid-fire: claimed, advanced in memory, not committed
    assert worker.returncode == -signal.SIGKILL
    assert not is_overdue(committed_sessions, task_id)
    assert timer_due(committed_sessions, instance_id) is not None
    assert audit_count(committed_sessions, instance_id, "process.timer") == 0
    assert instance_row(committed_sessions, instance_id).version_id == version_before

    (block / "release").touch()
    _, log = start_worker(blocking, MEALROLL_TEST_BLOCK_DIR=str(block))
    wait_until(lambda: is_overdue(committed_sessions, task_id), what="the timer fired after the restart", log=log)
    fired_at = polls_done(log)
    wait_until(lambda: polls_done(log) >= fired_at + 2, what="two more polls after the firing", log=log)

    assert len(list(block.glob("firing-*"))) == 2  # the service ran in the killed attempt and once more
    assert audit_count(committed_sessions, instance_id, "process.timer") == 1
    assert instance_row(committed_sessions, instance_id).version_id == version_before + 1  # advanced once
    assert timer_due(committed_sessions, instance_id) is None
    with committed_sessions() as session:
        assert [t.id for t in open_tasks(session, instance_id)] == [task_id]
    assert "could not fire" not in log.read_text(errors="replace")


def deploy_intake_with_interrupting_deadline(sessions: sessionmaker[Session]) -> None:
    text = INTAKE.read_text(encoding="utf-8")
    old = 'id="confirm_overdue" name="确认逾期" cancelActivity="false"'
    assert old in text
    with unit_of_work(sessions) as session:
        process_admin.deploy_version(session, actor=user(session, "processadmin"), process_id="student_intake",
                                     bpmn=text.replace(old, old.replace('"false"', '"true"')).encode(),
                                     note="确认逾期即收回任务")


def test_an_interrupting_timer_cancels_its_task_and_a_scan_removes_the_reminders(committed_sessions) -> None:  # type: ignore[no-untyped-def]
    deploy_intake_with_interrupting_deadline(committed_sessions)
    opened = utcnow()
    instance_id, task_id = intake_awaiting_confirmation(committed_sessions, seq=133, opened=opened)
    with committed_sessions() as session:
        assert session.get(TaskReminder, task_id) is not None
    late = opened + timedelta(days=CONFIRM_DAYS, seconds=1)

    with unit_of_work(committed_sessions) as session:
        workflows.advance_instance(session, instance_id=instance_id, now=opened + timedelta(days=CONFIRM_DAYS - 1))
    with committed_sessions() as session:
        assert [t.id for t in open_tasks(session, instance_id)] == [task_id]  # not due yet: nothing moved

    with unit_of_work(committed_sessions) as session:
        workflows.advance_instance(session, instance_id=instance_id, now=late)
    with committed_sessions() as session:
        task = session.get(HumanTask, task_id)
        assert task is not None and task.status == TaskStatus.cancelled
        assert open_tasks(session, instance_id) == []
        assert session.get(ProcessInstance, instance_id).status == InstanceStatus.completed
        assert session.get(InstanceTimer, instance_id) is None
        assert session.get(TaskReminder, task_id) is not None  # until the next scan looks at it

    assert reminders.scan(committed_sessions, now=late) == []
    with committed_sessions() as session:
        assert session.get(TaskReminder, task_id) is None
    assert audit_count(committed_sessions, instance_id, "process.timer") == 2


# --- a due date in a year the working-day calendar lacks ---------------------------------------

FAR_DAY = "2199-03-03"  # chinese-calendar knows no such year, nor does the demo county


def deploy_far_deadline(sessions: sessionmaker[Session], *, timer: bool) -> str:
    """`look` (county_reviewer) due five working days after FAR_DAY; with `timer`, reached through a P1D wait."""
    wait = ('<bpmn:intermediateCatchEvent id="wait_a_day" name="等一天"><bpmn:timerEventDefinition>'
            '<bpmn:timeDuration>"P1D"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    look = user_task("look", name="县级复核").replace(
        '<spiffworkflow:property name="form" value="review"/>',
        '<spiffworkflow:property name="form" value="review"/><spiffworkflow:property name="due" value="P5WD"/>'
        '<spiffworkflow:property name="due_from" value="from_day"/>')
    process_id = "far_deadline_timer" if timer else "far_deadline"
    steps = ["start", "set_from", *(["wait_a_day"] if timer else []), "look", "end"]
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + script_task("set_from", f'from_day = "{FAR_DAY}"') + (wait if timer else "")
        + look + '<bpmn:endEvent id="end"/>'
        + "".join(flow(f"f{i}", a, b) for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False))),
        lanes={"county_reviewer": steps}, process_id=process_id)
    with unit_of_work(sessions) as session:
        workflows.deploy(session, bpmn=bpmn, forms={"review": REVIEW_FORM})
    return process_id


def far_tasks(sessions: sessionmaker[Session], instance_id: int) -> list[HumanTask]:
    with sessions() as session:
        return open_tasks(session, instance_id)


def test_a_timer_opening_a_task_due_in_a_year_the_calendar_lacks_stops_the_instance_loudly(  # type: ignore[no-untyped-def]
        committed_sessions, start_worker) -> None:
    process_id = deploy_far_deadline(committed_sessions, timer=True)
    with unit_of_work(committed_sessions) as session:
        county = find_org_unit(session, code="520199")
        assert county is not None
        instance = workflows.start_by_system(session, process_id=process_id, now=utcnow() - timedelta(days=2), plan=StartPlan(
            subject=None, subject_type=None, subject_id=None, subject_label="县级复核", org_unit=county,
            role="county_reviewer", data={}, warnings=[], generic=True))
        instance_id = instance.id
    assert (due := timer_due(committed_sessions, instance_id)) is not None and due < utcnow()

    _, log = start_worker()
    wait_until(lambda: instance_row(committed_sessions, instance_id).status == InstanceStatus.error,
               what="the instance stopped in error", log=log)
    after = polls_done(log)
    wait_until(lambda: polls_done(log) >= after + 3, what="three more polls", log=log)

    # Fired once, not retried each poll; the task is open without a guessed due date, and says why.
    assert audit_count(committed_sessions, instance_id, "process.timer") == 1
    assert audit_count(committed_sessions, instance_id, "process.error") == 1
    assert timer_due(committed_sessions, instance_id) is None
    (task,) = far_tasks(committed_sessions, instance_id)
    assert task.task_id == "look" and task.due_at is None
    with committed_sessions() as session:
        reminder = session.get(TaskReminder, task.id)
        assert reminder is not None and reminder.next_at is None
        assert reminder.error is not None and "2199" in reminder.error and "chinese-calendar" in reminder.error
        # county_admin's outbox page lists it beside the reminders' own calendar errors
        assert [t.id for t, _ in reminders.reminder_errors(session, actor=user(session, "admin"))] == [task.id]
        error = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance_id,
                                                         AuditEntry.action == "process.error")).one()
        assert error.after["element_id"] == "look" and "2199" in error.after["message"]
    text = log.read_text(errors="replace")
    assert "could not fire" not in text and "CalendarNotCovered" not in text

    # The county enters the days (here by hand: declare_year stops at 2100), the process administrator retries.
    with unit_of_work(committed_sessions) as session:
        county = find_org_unit(session, code="520199")
        for day in range(4, 12):
            working_days.set_day(session, actor=user(session, "admin"), county=county, day=date(2199, 3, day),
                                 working=date(2199, 3, day).weekday() < 5 and day != 5, note="按国务院办公厅安排录入")
        process_admin.retry(session, actor=user(session, "processadmin"), instance_id=instance_id)
    (task,) = far_tasks(committed_sessions, instance_id)
    # 3-3 is a Sunday and 3-5 a holiday: 4, 6, 7, 8 (Mon, Wed-Fri) and 11 (Mon) are the five working days,
    # counted from FAR_DAY (due_from), not from the retry.
    assert task.due_at == datetime(2199, 3, 12, tzinfo=local_zone()) - timedelta(seconds=1)
    assert instance_row(committed_sessions, instance_id).status == InstanceStatus.running
    with committed_sessions() as session:
        reminder = session.get(TaskReminder, task.id)
        assert reminder is not None and reminder.error is None and reminder.due_at == task.due_at
        assert reminders.reminder_errors(session, actor=user(session, "admin")) == []


def test_a_start_whose_first_task_cannot_be_dated_is_kept_and_says_why(committed_sessions) -> None:  # type: ignore[no-untyped-def]
    process_id = deploy_far_deadline(committed_sessions, timer=False)
    with unit_of_work(committed_sessions) as session:
        instance, warnings = workflows.start_process(session, actor=user(session, "reviewer"), process_id=process_id,
                                                     data={})
        instance_id = instance.id
    (warning,) = [w for w in warnings if w.code == "due_not_computed"]
    assert "县级复核" in warning.message and "2199" in warning.message
    assert instance_row(committed_sessions, instance_id).status == InstanceStatus.error
    (task,) = far_tasks(committed_sessions, instance_id)
    assert task.due_at is None
    with committed_sessions() as session:
        assert [t.id for t, _ in reminders.reminder_errors(session, actor=user(session, "admin"))] == [task.id]
        # The process administrators are told the fix is the calendar's, not the definition's.
        notice = session.scalars(select(Notification).where(Notification.kind == Kind.process_error,
                                                            Notification.instance_id == instance_id)).first()
        assert notice is not None and "工作日历" in notice.body and "修正流程定义" not in notice.body

    # Given up instead: cancelled, and the next scan takes the error off county_admin's list.
    with unit_of_work(committed_sessions) as session:
        process_admin.cancel(session, actor=user(session, "processadmin"), instance_id=instance_id, reason="不再需要")
    reminders.scan(committed_sessions)
    with committed_sessions() as session:
        assert reminders.reminder_errors(session, actor=user(session, "admin")) == []
