"""A real worker with beat e-mails due reminders to a real SMTP server (aiosmtpd on 127.0.0.1), on the
embedded transport and on Redis: once, even when killed and restarted; and when killed between the
server taking a message and the worker recording it, that one message goes out again and nothing else.

The clock: tasks are opened "2.5 days ago" through the service layer (`start_process(now=...)`), so
that a reminder step is due at the real time the worker runs (engine/reminders.py, checked below)."""

import signal
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.reminders import DEFAULT_POLICY, plan
from registry import notifications, workflows
from registry.db import unit_of_work, utcnow
from registry.notifications import Channel, Notification, Preferences, Status
from registry.settings import local_zone
from registry.workflows import HumanTask, TaskStatus
from registry.working_days import WorkCalendar
from tests.factories import student_data, user
from tests.mailservers import PASSWORD, USERNAME, SmtpSink, start_smtp
from tests.workers.conftest import kill_group, wait_until


@pytest.fixture
def sink() -> SmtpSink:
    return SmtpSink()


@pytest.fixture
def smtp_env(sink: SmtpSink) -> Iterator[dict[str, str]]:
    controller = start_smtp(sink)
    yield {"MEALROLL_SMTP_HOST": "127.0.0.1", "MEALROLL_SMTP_PORT": str(controller.port),
           "MEALROLL_SMTP_STARTTLS": "false", "MEALROLL_SMTP_USERNAME": USERNAME, "MEALROLL_SMTP_PASSWORD": PASSWORD,
           "MEALROLL_SMTP_TIMEOUT_SECONDS": "60", "MEALROLL_NOTIFY_LEASE_SECONDS": "3"}
    controller.stop()


def due_review(sessions: sessionmaker[Session], *, seq: int) -> int:
    """A principal's review (P3D) opened 2.5 days ago: a reminder step of it is due now. Returns the task id."""
    opened = utcnow() - timedelta(days=2, hours=12)
    with unit_of_work(sessions) as session:
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                              data={"student": student_data(seq=seq)}, now=opened)
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                       HumanTask.status == TaskStatus.open)).one()
        assert task.due_at is not None
        step = plan(DEFAULT_POLICY, due_at=task.due_at, opened_at=opened, now=utcnow(), zone=local_zone(),
                    is_working=WorkCalendar().is_working).current
        assert step is not None and step.kind == "reminder", "the test's clock should make a reminder due now"
        return task.id


def wants_email(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        notifications.update_preferences(session, actor=user(session, "principal1"),
                                          preferences=Preferences(email_address="wang@school.example.cn"))


def mails_of(sessions: sessionmaker[Session], task_id: int) -> list[Notification]:
    with sessions() as session:
        return list(session.scalars(select(Notification).where(Notification.task_id == task_id,
                                                               Notification.channel == Channel.email)))


def all_sent(sessions: sessionmaker[Session], task_id: int) -> bool:
    rows = mails_of(sessions, task_id)
    return bool(rows) and all(r.status == Status.sent for r in rows)


def copies(sink: SmtpSink, notification_id: int) -> int:
    return sink.ids().count(str(notification_id))


def test_a_due_reminder_is_emailed_exactly_once_across_a_kill_and_restart(committed_sessions, start_worker,  # type: ignore[no-untyped-def]
                                                                          smtp_env, sink) -> None:
    wants_email(committed_sessions)
    first = due_review(committed_sessions, seq=401)
    worker, log = start_worker(**smtp_env)
    wait_until(lambda: all_sent(committed_sessions, first), what="the first reminder e-mailed and recorded", log=log)
    (mail,) = mails_of(committed_sessions, first)
    assert (mail.transport, mail.attempts) == ("smtp", 1)
    kill_group(worker)
    assert worker.returncode == -signal.SIGKILL

    second = due_review(committed_sessions, seq=403)
    _, log = start_worker(**smtp_env)
    wait_until(lambda: all_sent(committed_sessions, second), what="the second reminder after the restart", log=log)
    (other,) = mails_of(committed_sessions, second)
    assert copies(sink, mail.id) == 1 and copies(sink, other.id) == 1
    assert len(sink.messages) == 2
    message = sink.messages[0]
    assert message["To"] == "wang@school.example.cn" and message["Subject"].startswith("【待办提醒】校长审核")
    assert f"/tasks/{first}" in message.get_content()


def test_killed_between_the_server_taking_a_message_and_the_record_repeats_that_one_only(  # type: ignore[no-untyped-def]
        committed_sessions, start_worker, smtp_env, sink) -> None:
    wants_email(committed_sessions)
    task_id = due_review(committed_sessions, seq=405)
    sink.hold = threading.Event()  # the server takes the message and does not answer yet
    worker, log = start_worker(**smtp_env)
    try:
        wait_until(sink.received.is_set, what="the SMTP server received the reminder", log=log)
        kill_group(worker)  # dead before it could record the send
    finally:
        sink.hold.set()
    (mail,) = mails_of(committed_sessions, task_id)
    assert mail.status == Status.sending and copies(sink, mail.id) == 1

    sink.hold = None
    _, log = start_worker(**smtp_env)
    wait_until(lambda: all_sent(committed_sessions, task_id), what="the unrecorded message sent again after its lease",
               log=log)
    (mail,) = mails_of(committed_sessions, task_id)
    assert (mail.status, mail.attempts) == (Status.sent, 2)
    assert copies(sink, mail.id) == 2 and len(sink.messages) == 2  # that one message twice, nothing else
    first, again = sink.messages
    assert first["Message-ID"] == again["Message-ID"]  # a mail client shows the repeat as the same message


def test_sent_at_is_within_a_poll_and_two_seconds_of_the_due_time(committed_sessions, start_worker,  # type: ignore[no-untyped-def]
                                                                 smtp_env, sink) -> None:
    wants_email(committed_sessions)
    worker, log = start_worker(**smtp_env)
    wait_until(lambda: "ready" in log.read_text(errors="replace"), what="the worker is up", log=log)
    task_id = due_review(committed_sessions, seq=407)  # its first look is due the moment it opens
    opened_at = utcnow()
    wait_until(lambda: all_sent(committed_sessions, task_id), what="the reminder e-mailed", log=log)
    (mail,) = mails_of(committed_sessions, task_id)
    assert mail.sent_at is not None
    latency = (mail.sent_at - opened_at).total_seconds()
    # The target: poll interval + 2 s. Measured 0.13–0.73 s (filesystem and Redis); bench/reminders.py
    # measures it at county scale, due time to the SMTP server's 250.
    assert latency <= 0.5 + 2, latency
    kill_group(worker)
