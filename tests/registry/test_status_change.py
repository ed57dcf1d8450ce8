"""学籍异动 of one student (休学, 复学, 辍学, 死亡) through status_change on a real database: who may ask,
what is refused, and the subsidy months after each approved change (Art. 14, 15)."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import students, workflows
from registry.audit import AuditEntry
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, TaskStatus
from tests.factories import admit, user

S = StudentStatus
CONFIRMED = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
BIRTH = date(2014, 8, 11)


def enrolled(session: Session, seq: int) -> Student:
    return admit(session, now=CONFIRMED, seq=seq, birth=BIRTH, name="李小花")


def ask(session: Session, student: Student, to_status: str, month: str, reason: str = "监护人申请",
        username: str = "registrar1") -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user(session, username), process_id="status_change", now=NOW,
                                          data={"student_id": student.id, "to_status": to_status,
                                                "effective_month": month, "reason": reason})
    return instance


def open_task(session: Session, instance: ProcessInstance) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()


def complete(session: Session, instance: ProcessInstance, username: str, data: dict[str, Any]) -> HumanTask:
    task = open_task(session, instance)
    workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=data, now=NOW)
    return task


def approved(session: Session, student: Student, to_status: str, month: str, reason: str = "监护人申请") -> ProcessInstance:
    instance = ask(session, student, to_status, month, reason)
    complete(session, instance, "principal1", {"decision": "approve"})
    complete(session, instance, "reviewer", {"decision": "approve"})
    session.refresh(student)
    session.refresh(instance)
    assert instance.status == InstanceStatus.completed
    return instance


def periods(session: Session, student: Student) -> list[tuple[str, str | None]]:
    rows = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
                           .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
                           .execution_options(populate_existing=True))
    return [(p.from_month, p.to_month) for p in rows]


def instances(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ProcessInstance)
                          .where(ProcessInstance.process_id == "status_change")) or 0


@pytest.mark.parametrize(("to_status", "seq"), [(S.suspended, 201), (S.dropped_out, 203), (S.deceased, 205)])
def test_an_approved_departure_ends_the_subsidy_from_the_change_month(session: Session, to_status: str,
                                                                      seq: int) -> None:
    student = enrolled(session, seq)
    instance = ask(session, student, to_status, "2026-03", "监护人申请")
    review = open_task(session, instance)
    assert (review.task_id, review.role) == ("review_change", "school_principal")
    assert "自 2026-03 起不再享受营养改善计划补助" in workflows.task_view(session, review)[1]
    complete(session, instance, "principal1", {"decision": "approve"})
    session.refresh(student)
    assert student.status == S.active  # nothing changes before the county approves
    complete(session, instance, "reviewer", {"decision": "approve"})
    session.refresh(student)
    assert student.status == to_status
    assert periods(session, student) == [("2023-09", "2026-02")]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.status_change",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert entry.instance_id == instance.id and entry.reason == "监护人申请"
    assert entry.actor is not None and entry.actor.username == "reviewer"


def test_a_resumption_opens_a_new_period_from_its_month(session: Session) -> None:
    student = enrolled(session, 207)
    approved(session, student, S.suspended, "2025-03", "因病休学")
    instance = approved(session, student, S.active, "2025-09", "病愈复学")
    assert student.status == S.active
    assert periods(session, student) == [("2023-09", "2025-02"), ("2025-09", None)]
    new = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id,
                                                        EnrolmentPeriod.to_month.is_(None))).one()
    assert new.instance_id == instance.id


def test_a_dropout_comes_back_as_a_re_entry(session: Session) -> None:
    student = enrolled(session, 209)
    approved(session, student, S.dropped_out, "2024-11", "长期未到校")
    approved(session, student, S.active, "2025-03", "劝返复学")
    assert periods(session, student) == [("2023-09", "2024-10"), ("2025-03", None)]


@pytest.mark.parametrize(("to_status", "month", "field", "error"), [
    (S.suspended, "2023-08", "effective_month", RuleViolation),   # before the enrolment month
    (S.suspended, "2026-13", "effective_month", RuleViolation),
    (S.active, "2026-03", "to_status", InvalidTransition),        # already active
    (S.graduated, "2026-07", "to_status", RuleViolation),         # a graduation goes by school list
    (S.transferred_out, "2026-03", "to_status", RuleViolation),   # a transfer is its own process
    ("expelled", "2026-03", "to_status", RuleViolation),
])
def test_a_change_the_registry_would_refuse_is_refused_when_filed_and_nothing_starts(
        session: Session, to_status: str, month: str, field: str, error: type[Exception]) -> None:
    student = enrolled(session, 211)
    before = instances(session)
    with pytest.raises(error) as err:
        ask(session, student, to_status, month)
    assert [d["field"] for d in err.value.details] == [field]  # type: ignore[attr-defined]
    assert instances(session) == before and student.status == S.active


def test_the_reason_is_required(session: Session) -> None:
    student = enrolled(session, 213)
    with pytest.raises(RuleViolation) as err:
        ask(session, student, S.suspended, "2026-03", reason=" ")
    assert [d["field"] for d in err.value.details] == ["reason"]


@pytest.mark.parametrize(("username", "error"), [("principal1", PermissionDenied), ("reviewer", PermissionDenied),
                                                 ("registrar2", NotFound), ("township1", PermissionDenied)])
def test_only_the_registrar_of_the_school_asks(session: Session, username: str, error: type[Exception]) -> None:
    student = enrolled(session, 215)
    with pytest.raises(error):
        ask(session, student, S.suspended, "2026-03", username=username)


def test_the_wrong_role_cannot_decide(session: Session) -> None:
    student = enrolled(session, 217)
    instance = ask(session, student, S.suspended, "2026-03")
    task = open_task(session, instance)
    for username in ("registrar1", "reviewer", "principal2"):
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=user(session, username), task_id=task.id,
                                    data={"decision": "approve"}, now=NOW)
    complete(session, instance, "principal1", {"decision": "approve"})
    with pytest.raises(NotFound):
        workflows.complete_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance).id,
                                data={"decision": "approve"}, now=NOW)


def test_a_returned_change_is_revised_and_checked_again(session: Session) -> None:
    student = enrolled(session, 219)
    instance = ask(session, student, S.suspended, "2026-03", "因病")
    complete(session, instance, "principal1", {"decision": "return", "comment": "应为辍学"})
    revise = open_task(session, instance)
    assert (revise.task_id, revise.role) == ("revise_change", "school_registrar")
    registrar = user(session, "registrar1")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(RuleViolation, match="早于本次在籍起始年月") as err:
        workflows.complete_task(session, actor=registrar, task_id=revise.id, now=NOW,
                                data={"to_status": "dropped_out", "effective_month": "2023-01", "reason": "辍学"})
    assert [d["field"] for d in err.value.details] == ["effective_month"]
    savepoint.rollback()
    assert open_task(session, instance).id == revise.id
    workflows.complete_task(session, actor=registrar, task_id=revise.id, now=NOW,
                            data={"to_status": "dropped_out", "effective_month": "2026-02", "reason": "长期未到校"})
    review = open_task(session, instance)
    assert review.task_id == "review_change" and "辍学" in workflows.task_view(session, review)[1]
    complete(session, instance, "principal1", {"decision": "approve"})
    complete(session, instance, "reviewer", {"decision": "return", "comment": "月份再核对"})
    workflows.complete_task(session, actor=registrar, task_id=open_task(session, instance).id, now=NOW,
                            data={"to_status": "dropped_out", "effective_month": "2026-03", "reason": "长期未到校"})
    complete(session, instance, "principal1", {"decision": "approve"})
    complete(session, instance, "reviewer", {"decision": "approve"})
    session.refresh(student)
    assert student.status == S.dropped_out and periods(session, student) == [("2023-09", "2026-02")]


@pytest.mark.parametrize("rejecting", ["principal1", "reviewer"])
def test_a_rejected_change_changes_nothing(session: Session, rejecting: str) -> None:
    student = enrolled(session, 221)
    instance = ask(session, student, S.suspended, "2026-03")
    if rejecting == "reviewer":
        complete(session, instance, "principal1", {"decision": "approve"})
    task = complete(session, instance, rejecting, {"decision": "reject", "comment": "无休学证明"})
    session.refresh(student)
    session.refresh(instance)
    assert student.status == S.active and periods(session, student) == [("2023-09", None)]
    assert instance.status == InstanceStatus.completed and task.comment == "无休学证明"


def test_a_change_approved_after_the_record_moved_on_is_refused_and_nothing_half_done(session: Session) -> None:
    student = enrolled(session, 223)
    instance = ask(session, student, S.suspended, "2026-03")
    complete(session, instance, "principal1", {"decision": "approve"})
    # Meanwhile the county voids the record as entered by mistake.
    students.void_active(session, actor=user(session, "reviewer"), student_id=student.id, reason="重复录入")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(InvalidTransition, match="已作废"):
        complete(session, instance, "reviewer", {"decision": "approve"})
    savepoint.rollback()
    assert open_task(session, instance).task_id == "approve_change"


def test_one_request_at_a_time_and_withdrawal_frees_the_student(session: Session) -> None:
    student = enrolled(session, 225)
    first = ask(session, student, S.suspended, "2026-03")
    with pytest.raises(Conflict, match=f"学籍异动”（流程编号 {first.id}）") as err:
        ask(session, student, S.dropped_out, "2026-03")
    assert err.value.details[0]["field"] == "student_id"
    workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=first.id, reason="填错了", now=NOW)
    second = ask(session, student, S.dropped_out, "2026-03")
    assert second.status == InstanceStatus.running
