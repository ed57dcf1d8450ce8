"""Two people completing one task at the same moment: exactly one wins, the other gets 409.

Runs against committed data on real connections (no per-test rollback), so it cleans up after itself.
"""

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from registry import workflows
from registry.audit import AuditEntry
from registry.db import unit_of_work
from registry.notifications import Notification
from registry.settings import Settings
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.task_reminders import TaskReminder
from registry.users import Role, create_user, find_user, grant_role
from registry.workflows import HumanTask, InstanceTimer, ProcessInstance, TaskStatus
from tests.conftest import DEMO_PASSWORD
from tests.factories import student_data, user


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
