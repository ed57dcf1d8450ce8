"""A real Celery worker with beat fires due BPMN timers from the database.

The clock is controlled through the service layer, not by editing rows: `start_process` and
`complete_task` take the unit of work's `now`, and the engine computes a timer's due time from
that clock and stores it in the instance state (engine/timers.py). So approving the review
"six days ago" leaves confirm_intake's real P5D boundary timer due yesterday, in the state and in
`instance_timer` alike. Backdating only the `instance_timer` row would not do: the worker fires
with `utcnow()` and the engine would find its own P5D not yet due.
"""

import signal
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import workflows
from registry.audit import AuditEntry
from registry.db import unit_of_work, utcnow
from registry.workflows import HumanTask, InstanceTimer, TaskStatus
from tests.factories import student_data, user
from tests.workers.conftest import kill_group, wait_until

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
