"""Celery tasks: each opens its own unit of work and takes ids, never objects."""

import logging
from dataclasses import dataclass
from functools import cache

from sqlalchemy.orm import Session, sessionmaker

from registry import annual_cycle, data_releases, delivery, imports, reminders, workflows
from registry.db import make_engine, make_sessionmaker, unit_of_work, utcnow
from registry.file_store import FileStore, local_file_store
from registry.settings import get_settings
from workers.app import celery_app

log = logging.getLogger(__name__)


@cache
def sessions() -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(get_settings().db_url))


@dataclass(frozen=True)
class TimerPoll:
    fired: int
    failed: int
    # Stopped at the limit, not because nothing was left: the task polls again at once instead of waiting
    # a beat interval per `limit` rows (a backlog after an outage, or every school's 9-10 deadline at once).
    more: bool


def fire_due_timers(factory: sessionmaker[Session], *, limit: int = 100) -> TimerPoll:
    """Advance instances whose timer is due, each claimed and fired in its own transaction.

    An instance that fails to advance is skipped for the rest of this poll and retried by the next (firing
    is idempotent). A claim that fails (the database is unreachable) ends the poll with that error: there
    is nothing to skip, and trying again at once would only spin until the database came back.
    """
    now = utcnow()
    failed: set[int] = set()
    fired = 0
    while fired + len(failed) < limit:
        instance_id: int | None = None
        try:
            with unit_of_work(factory) as session:
                instance_id = workflows.claim_due_instance(session, now=now, skip=failed)
                if instance_id is None:
                    return TimerPoll(fired, len(failed), more=False)
                workflows.advance_instance(session, instance_id=instance_id, now=now)
            fired += 1
        except Exception:
            if instance_id is None:
                log.exception("could not claim due timers; this poll ends (%d fired), the next one tries again",
                              fired)
                raise
            # Still due: the next poll retries it, which is safe because firing is idempotent.
            log.exception("timer of instance %s could not fire", instance_id)
            failed.add(instance_id)
    return TimerPoll(fired, len(failed), more=fired > 0)


@celery_app.task(name="workflow.fire_due_timers", ignore_result=True)
def fire_due_timers_task() -> int:
    poll = fire_due_timers(sessions())
    if poll.more:
        # Behind whatever else is queued (reminders, e-mails): the solo pool of the embedded worker runs one
        # task at a time, and a poll draining 10k timers in one go would hold those up for minutes.
        fire_due_timers_task.delay()
    return poll.fired


def check_queued_imports(factory: sessionmaker[Session], store: FileStore, *, limit: int = 5) -> int:
    """Check uploaded student lists one after another; a batch that breaks is marked failed, not retried forever."""
    checked = 0
    while checked < limit:
        now = utcnow()
        with unit_of_work(factory) as session:
            batch_id = imports.claim_next(session, now=now)
        if batch_id is None:
            break
        try:
            imports.check_batch(factory, batch_id, store=store, today=now.date())
        except Exception:
            log.exception("import batch %s could not be checked", batch_id)
            with unit_of_work(factory) as session:
                imports.mark_failed(session, batch_id=batch_id)
        checked += 1
    return checked


@celery_app.task(name="imports.check_queued", ignore_result=True)
def check_queued_imports_task() -> int:
    return check_queued_imports(sessions(), local_file_store(get_settings()))


# Messages per notify.send: one SMTP connection each, and a lost message costs no more than these.
SEND_CHUNK = 200


@celery_app.task(name="reminders.scan", ignore_result=True)
def scan_reminders_task() -> int:
    """Make the reminders that are due, handing each committed batch to notify.send (the flush finds any lost)."""
    def send(ids: list[int]) -> None:
        for start in range(0, len(ids), SEND_CHUNK):
            send_notifications_task.delay(ids[start:start + SEND_CHUNK])

    return len(reminders.scan(sessions(), sent=send))


@celery_app.task(name="notify.send", ignore_result=True)
def send_notifications_task(notification_ids: list[int]) -> int:
    return delivery.deliver(sessions(), settings=get_settings(), ids=[int(i) for i in notification_ids],
                            limit=len(notification_ids))


@celery_app.task(name="notify.flush", ignore_result=True)
def flush_notifications_task() -> int:
    """Whatever is due and not yet out: made by a request or a process, a retry, a lease run out."""
    sent = 0
    while (batch := delivery.deliver(sessions(), settings=get_settings(), limit=SEND_CHUNK)) > 0:
        sent += batch
    return sent


def purge_released_files(factory: sessionmaker[Session], store: FileStore) -> int:
    """Delete the files of data releases nobody may download any more (expired or used up)."""
    with unit_of_work(factory) as session:
        return data_releases.purge_files(session, store=store, now=utcnow())


@celery_app.task(name="data_releases.purge", ignore_result=True)
def purge_released_files_task() -> int:
    return purge_released_files(sessions(), local_file_store(get_settings()))


def arm_annual_cycle(factory: sessionmaker[Session]) -> int:
    """Start the school year's annual_cycle for each beneficiary school that has none yet."""
    with unit_of_work(factory) as session:
        return len(annual_cycle.arm(session, now=utcnow()))


@celery_app.task(name="annual_cycle.arm", ignore_result=True)
def arm_annual_cycle_task() -> int:
    return arm_annual_cycle(sessions())
