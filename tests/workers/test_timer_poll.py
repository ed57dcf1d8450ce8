"""The timer poll (workers/tasks.py `fire_due_timers`) when the database goes away, and when more is due than
one poll takes: on a database of the test's own, and with a real worker."""

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from registry.audit import AuditEntry
from registry.db import make_engine, make_sessionmaker, utcnow
from registry.workflows import InstanceTimer
from tests.workers.conftest import prepare_database, wait_until
from tests.workers.test_timers import CONFIRM_DAYS, intake_awaiting_confirmation
from workers.tasks import TimerPoll, fire_due_timers

OVERDUE = timedelta(days=CONFIRM_DAYS + 1)


def promptly(fn: Callable[[], Any], *, seconds: float = 30) -> Any:
    """fn's result, or its exception; a poll still running after `seconds` fails the test (a daemon thread,
    so that a poll spinning for ever cannot hang the run)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as err:  # handed to the test as it is
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"the poll still runs after {seconds:.0f} s: it spins instead of ending")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def fired(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "process.timer")) or 0


def test_a_poll_whose_first_claim_fails_raises_the_database_error(tmp_path: Path) -> None:
    unreachable = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'mealroll.db'}"))

    with pytest.raises(OperationalError, match="unable to open database file"):
        promptly(lambda: fire_due_timers(unreachable))


def test_a_poll_whose_database_goes_away_after_a_firing_ends_at_once(tmp_path: Path) -> None:
    path = tmp_path / "timers.db"
    url = f"sqlite:///{path}"
    prepare_database(url)
    sessions = make_sessionmaker(make_engine(url))
    for seq in (141, 143, 145):
        intake_awaiting_confirmation(sessions, seq=seq, opened=utcnow() - OVERDUE)
    # A connection per transaction, so that the next claim really reaches for the database file.
    poll_sessions = make_sessionmaker(make_engine(url, poolclass=NullPool))
    away = tmp_path / "away"

    @event.listens_for(poll_sessions, "after_commit")
    def database_gone(_session: Session) -> None:
        if not away.exists():  # after the first firing: the disk is gone (an empty file takes its place)
            away.mkdir()
            for part in tmp_path.glob("timers.db*"):
                part.rename(away / part.name)

    with pytest.raises(OperationalError, match="no such table"):
        promptly(lambda: fire_due_timers(poll_sessions))

    moved = make_sessionmaker(make_engine(f"sqlite:///{away / 'timers.db'}"))
    assert fired(moved) == 1  # the firing before the loss was committed; the rest wait for the next poll
    with moved() as session:
        assert session.scalar(select(func.count()).select_from(InstanceTimer)) == 2


def test_a_poll_takes_at_most_its_limit_and_says_whether_more_may_be_due(committed_sessions) -> None:  # type: ignore[no-untyped-def]
    for seq in (151, 153, 155):
        intake_awaiting_confirmation(committed_sessions, seq=seq, opened=utcnow() - OVERDUE)

    assert fire_due_timers(committed_sessions, limit=2) == TimerPoll(fired=2, failed=0, more=True)
    assert fire_due_timers(committed_sessions, limit=2) == TimerPoll(fired=1, failed=0, more=False)
    assert fire_due_timers(committed_sessions, limit=2) == TimerPoll(fired=0, failed=0, more=False)
    assert fired(committed_sessions) == 3


def beat_sends(log: Path) -> int:
    return log.read_text(errors="replace").count("Sending due task fire-due-timers")


def test_a_backlog_larger_than_one_poll_drains_without_waiting_for_the_next_beat(  # type: ignore[no-untyped-def]
        committed_sessions, start_worker) -> None:
    backlog = 130  # the task takes 100 per poll (workers/tasks.py)
    for seq in range(201, 201 + 2 * backlog, 2):
        intake_awaiting_confirmation(committed_sessions, seq=seq, opened=utcnow() - OVERDUE)

    # Beat's first poll comes one interval after its start; the next would come 30 s later.
    _, log = start_worker(MEALROLL_TIMER_POLL_SECONDS="30")
    wait_until(lambda: fired(committed_sessions) == backlog, what=f"all {backlog} timers fired", log=log, timeout=90)

    assert beat_sends(log) == 1  # one beat poll, and the task asked for the rest itself
    with committed_sessions() as session:
        assert session.scalar(select(func.count()).select_from(InstanceTimer)) == 0
