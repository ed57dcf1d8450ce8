"""The same work at the same moment: two people completing one task (exactly one wins, the other gets
409); two pollers of timers, reminders or notifications (each row claimed by one, the other skips it);
two senders while a slow relay outlasts a lease (each message goes out once); two digest compositions
(one digest).

Runs against committed data on real connections (no per-test rollback), so it cleans up after itself.
"""

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from registry import delivery, notifications, reminders, workflows
from registry.audit import AuditEntry
from registry.db import unit_of_work, utcnow
from registry.notifications import Kind, Notification, Preferences, Status
from registry.settings import Settings
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.task_reminders import TaskReminder
from registry.users import Role, create_user, find_user, grant_role
from registry.workflows import HumanTask, InstanceTimer, ProcessInstance, TaskStatus
from tests.conftest import DEMO_PASSWORD
from tests.factories import student_data, user
from tests.mailservers import PASSWORD, USERNAME, SmtpSink, start_smtp

# The dedup keys of the messages these tests make, so that they can be removed again.
KEY = "concurrency-test"
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def committed(db_engine: Engine) -> Iterator[sessionmaker[Session]]:
    factory = sessionmaker(db_engine, expire_on_commit=False)
    with unit_of_work(factory) as session:
        if find_user(session, username="reviewer_b") is None:
            other = create_user(session, username="reviewer_b", display_name="第二审核员", password=DEMO_PASSWORD)
            grant_role(session, user=other, role=Role.county_reviewer, org_unit_code="520199")
    created: list[int] = []
    factory.created = created  # type: ignore[attr-defined]
    yield factory
    with unit_of_work(factory) as session:
        for instance_id in created:
            instance = session.get(ProcessInstance, instance_id)
            assert instance is not None
            student_id = instance.subject_id
            session.execute(delete(AuditEntry).where(or_(
                AuditEntry.instance_id == instance_id,
                (AuditEntry.object_type == "student") & (AuditEntry.object_id == str(student_id)))))
            session.execute(delete(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student_id))
            task_ids = select(HumanTask.id).where(HumanTask.instance_id == instance_id).scalar_subquery()
            # Rows derived from the tasks go first: SQLite in this suite does not cascade every delete.
            session.execute(delete(TaskReminder).where(TaskReminder.task_id.in_(task_ids)))
            session.execute(delete(Notification).where(or_(Notification.task_id.in_(task_ids),
                                                           Notification.instance_id == instance_id)))
            session.execute(delete(HumanTask).where(HumanTask.instance_id == instance_id))
            session.execute(delete(InstanceTimer).where(InstanceTimer.instance_id == instance_id))
            session.execute(delete(ProcessInstance).where(ProcessInstance.id == instance_id))
            session.execute(delete(Student).where(Student.id == student_id))


def confirm_task_ready(factory: sessionmaker[Session], seq: int) -> tuple[int, int]:
    with unit_of_work(factory) as session:
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                              data={"student": student_data(seq=seq)})
        factory.created.append(instance.id)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        review = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)).one()
        workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id,
                                data={"decision": "approve"})
    with unit_of_work(factory) as session:
        confirm = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                          HumanTask.status == TaskStatus.open)).one()
        return instance.id, confirm.id


@pytest.mark.parametrize("round_", range(4))
def test_two_reviewers_confirm_the_same_task_at_once_exactly_one_wins(
        committed: sessionmaker[Session], tmp_path, round_: int) -> None:  # type: ignore[no-untyped-def]
    instance_id, task_id = confirm_task_ready(committed, seq=601 + 2 * round_)
    settings = Settings(env="test", data_dir=tmp_path, secret_key="concurrency-test-secret")
    app = create_app(settings, committed)
    barrier = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def complete(username: str) -> None:
        with TestClient(app, raise_server_exceptions=False) as client:
            auth = client.post("/api/auth/token", data={"username": username, "password": DEMO_PASSWORD}).json()
            headers = {"Authorization": f"Bearer {auth['access_token']}"}
            barrier.wait()
            statuses[username] = client.post(f"/api/tasks/{task_id}/complete", headers=headers,
                                             json={"data": {"decision": "approve"}}).status_code

    threads = [threading.Thread(target=complete, args=(name,)) for name in ("reviewer", "reviewer_b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses.values()) == [200, 409], statuses
    with unit_of_work(committed) as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance is not None and instance.status == "completed"
        student = session.get(Student, instance.subject_id)
        assert student is not None and student.status == StudentStatus.active
        assert len(student.periods) == 1
        completions = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance_id,
                                                               AuditEntry.action == "student.activate")).all()
        assert len(completions) == 1


@pytest.mark.postgres
def test_timer_poll_claims_skip_rows_another_poller_holds(committed: sessionmaker[Session]) -> None:
    instance_id, _ = confirm_task_ready(committed, seq=701)
    with unit_of_work(committed) as session:
        due = session.get(InstanceTimer, instance_id)
        assert due is not None
        due_at = due.due_at
    holder = committed()
    try:
        with holder.begin():
            claimed = workflows.claim_due_instance(holder, now=due_at)
            assert claimed is not None
            with unit_of_work(committed) as other:
                # A second poller skips the row the first one holds instead of waiting for it.
                assert workflows.claim_due_instance(other, now=due_at) != claimed
    finally:
        holder.close()


def review_task_ready(factory: sessionmaker[Session], seq: int) -> int:
    """A new intake waiting for the principal's review; returns the review task's id."""
    with unit_of_work(factory) as session:
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                              data={"student": student_data(seq=seq)})
        factory.created.append(instance.id)  # type: ignore[attr-defined]
        return session.scalars(select(HumanTask.id).where(HumanTask.instance_id == instance.id)).one()


@pytest.mark.postgres
def test_reminder_scans_skip_the_rows_another_scan_holds(committed: sessionmaker[Session]) -> None:
    tasks = [review_task_ready(committed, seq=711), review_task_ready(committed, seq=713)]
    # Due long before anything else in the shared database: these two are the first any scan claims.
    with unit_of_work(committed) as session:
        for day, task_id in enumerate(tasks, start=1):
            session.execute(update(TaskReminder).where(TaskReminder.task_id == task_id)
                            .values(next_at=datetime(2000, 1, day, tzinfo=UTC)))
    now = datetime(2000, 1, 3, tzinfo=UTC)
    holder = committed()
    try:
        with holder.begin():
            assert [r.task_id for r in reminders.claim_due(holder, now=now, limit=1)] == [tasks[0]]
            with unit_of_work(committed) as other:
                # A second scanner takes the next row instead of waiting for (or repeating) the held one.
                assert [r.task_id for r in reminders.claim_due(other, now=now, limit=1)] == [tasks[1]]
    finally:
        holder.close()


@pytest.fixture
def messages(committed: sessionmaker[Session]) -> Iterator[Callable[..., list[int]]]:
    """Makes committed e-mail notifications to principal1 (held for a digest with digest=True); removes them,
    and the digests made of them, afterwards."""

    def clean() -> None:
        with unit_of_work(committed) as session:
            mine = Notification.dedup_key.like(f"{KEY}:%")
            digests = set(session.scalars(select(Notification.digest_id).where(mine, Notification.digest_id.is_not(None))))
            session.execute(delete(Notification).where(mine))
            session.execute(delete(Notification).where(Notification.id.in_(digests)))

    def make(n: int, *, digest: bool = False, now: datetime | None = None) -> list[int]:
        with unit_of_work(committed) as session:
            recipient = user(session, "principal1").id
            wanted = {recipient: Preferences(in_app=False, email_address="wang@school.example.cn", digest=digest)}
            rows = []
            for i in range(n):
                message = notifications.render(Kind.reminder, key=f"{KEY}:{i}", link="/tasks/7", title="校长审核",
                                               subject_label="张小明", org_unit="城关镇中心小学", role="校长",
                                               due="2026年9月4日 10:00", claimed=False, days=1)
                rows += notifications.rows_for(message, [recipient], wanted, now or utcnow())
            notifications.insert_rows(session, rows)
            return list(session.scalars(select(Notification.id).where(Notification.dedup_key.like(f"{KEY}:%"))
                                        .order_by(Notification.id)))

    clean()
    yield make
    clean()


@pytest.mark.postgres
def test_notification_claims_skip_the_rows_another_sender_holds(committed: sessionmaker[Session],
                                                                messages: Callable[..., list[int]]) -> None:
    ids = messages(2)
    now = utcnow()
    holder = committed()
    try:
        with holder.begin():
            held = notifications.claim(holder, now=now, lease_until=now + timedelta(minutes=2), max_attempts=5,
                                       ids=ids, limit=1)
            assert [n.id for n in held] == [ids[0]]
            with unit_of_work(committed) as other:
                taken = notifications.claim(other, now=now, lease_until=now + timedelta(minutes=2), max_attempts=5,
                                            ids=ids)
                assert [n.id for n in taken] == [ids[1]]
    finally:
        holder.close()


def test_a_slow_relay_outlasting_the_lease_still_gets_each_message_once(committed: sessionmaker[Session],
                                                                        messages: Callable[..., list[int]]) -> None:
    """A batch takes longer than its lease: another worker's flush claims the rest meanwhile, and the first
    worker skips each row that is no longer its own instead of sending it too."""
    ids = messages(12)
    sink = SmtpSink(delay=0.3)  # 3.6 s for the batch, with a lease of 1.5 s
    controller = start_smtp(sink)
    settings = Settings(env="test", smtp_host="127.0.0.1", smtp_port=controller.port, smtp_starttls=False,
                        smtp_username=USERNAME, smtp_password=PASSWORD, notify_lease_seconds=1.5)
    sent: dict[str, int] = {}
    first = threading.Thread(target=lambda: sent.__setitem__("first", delivery.deliver(committed, settings=settings,
                                                                                       ids=ids)))
    try:
        first.start()
        assert sink.received.wait(30)
        # The lease of the rows not yet sent ran out while the first worker is still at it.
        time.sleep(1.5)
        sent["second"] = delivery.deliver(committed, settings=settings, ids=ids)
        first.join(60)
    finally:
        controller.stop()
    assert sorted(sink.ids(), key=int) == [str(i) for i in ids]  # every message, each once
    assert sent["first"] > 0 and sent["second"] > 0 and sent["first"] + sent["second"] == len(ids)
    with unit_of_work(committed) as session:
        assert set(session.scalars(select(Notification.status).where(Notification.id.in_(ids)))) == {Status.sent}


def test_two_digest_compositions_at_once_make_one_digest(committed: sessionmaker[Session],
                                                         messages: Callable[..., list[int]]) -> None:
    held = messages(3, digest=True, now=datetime(2026, 9, 3, 8, tzinfo=ZONE))
    composed_at = datetime(2026, 9, 3, 8, 40, tzinfo=ZONE)
    second: list[int] = []
    errors: list[BaseException] = []

    def compose() -> None:
        try:
            with unit_of_work(committed) as session:
                second.extend(notifications.compose_digests(session, now=composed_at))
        except BaseException as err:  # the assertion below reports it
            errors.append(err)

    holder = committed()
    other = threading.Thread(target=compose)
    try:
        with holder.begin():
            first = notifications.compose_digests(holder, now=composed_at)
            other.start()
            # PostgreSQL: the second skips the rows the first holds and finishes at once. SQLite: it waits
            # for the first's write lock and then finds nothing held.
            other.join(timeout=2)
        other.join(timeout=60)
    finally:
        holder.close()
    assert errors == [] and len(first) == 1 and second == []
    with unit_of_work(committed) as session:
        rows = session.scalars(select(Notification).where(Notification.id.in_(held))).all()
        assert {(n.status, n.digest_id) for n in rows} == {(Status.digested, first[0])}
        digest = session.get(Notification, first[0])
        assert digest is not None and digest.subject == "【每日汇总】9月3日，您有 3 条通知"
