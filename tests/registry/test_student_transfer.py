"""student_transfer (转学, Art. 15) through the service layer on a real database."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import attachments, process_admin, report_submissions, transfers, workflows
from registry.access import mask_id_number
from registry.audit import AuditEntry
from registry.errors import Conflict, DomainError, NotFound, PermissionDenied, RuleViolation
from registry.file_store import LocalFileStore
from registry.org_units import OrgKind, create_org_unit, find_org_unit
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.users import Role, User, create_user, grant_role
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.factories import SCHOOL_1, SCHOOL_2, SCHOOL_3, admit, student_data, user

CONFIRMED = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
APPROVE = {"decision": "approve"}
OTHER_COUNTY_SCHOOL = "2152019801"


# Every test a birth date of its own in 2013: no other test uses that year, so ID numbers never clash.
def born(day: int) -> date:
    return date(2013, 1 + day // 28, 1 + day % 28)


def active_student(session: Session, day: int, **overrides: Any) -> Student:
    return admit(session, now=CONFIRMED, seq=101, birth=born(day), **overrides)


def months(first: str, last: str) -> list[str]:
    out, (year, month) = [], (int(first[:4]), int(first[5:]))
    while f"{year}-{month:02d}" <= last:
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def periods(session: Session, student: Student) -> list[EnrolmentPeriod]:
    return list(session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
                                .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
                                .execution_options(populate_existing=True)))


def spans(session: Session, student: Student) -> list[tuple[str, str, str | None]]:
    return [(p.school.code, p.from_month, p.to_month) for p in periods(session, student)]


def open_task(session: Session, instance_id: int) -> HumanTask:
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                   HumanTask.status == TaskStatus.open)).all()
    assert len(rows) == 1, [r.task_id for r in rows]
    return rows[0]


def act(session: Session, instance: ProcessInstance, username: str, task_id: str,
        data: dict[str, Any] | None = None, *, now: datetime | None = None) -> HumanTask:
    task = open_task(session, instance.id)
    assert task.task_id == task_id, task.task_id
    workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=data or APPROVE, now=now)
    return task


def start(session: Session, username: str, **data: Any) -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user(session, username), process_id="student_transfer",
                                          data=data)
    return instance


def in_county(session: Session, student: Student, username: str = "registrar1", **data: Any) -> ProcessInstance:
    return start(session, username, **{"kind": "in_county", "student_id": student.id,
                                       "receiving_school_code": SCHOOL_2, "change_month": "2025-03", **data})


def make_user(session: Session, username: str, role: Role, unit: str) -> User:
    made = create_user(session, username=username, display_name=username, password="pass-word-123")
    grant_role(session, user=made, role=role, org_unit_code=unit)
    session.refresh(made)
    return made


def other_county(session: Session) -> None:
    """A second county beside the demo county, with one school and its staff."""
    county = create_org_unit(session, code="520198", name="邻县", kind=OrgKind.county)
    township = create_org_unit(session, code="520198101", name="邻县城关镇", kind=OrgKind.township, parent=county)
    create_org_unit(session, code=OTHER_COUNTY_SCHOOL, name="邻县城关小学", kind=OrgKind.school, parent=township)
    make_user(session, "neighbour_registrar", Role.school_registrar, OTHER_COUNTY_SCHOOL)
    make_user(session, "neighbour_principal", Role.school_principal, OTHER_COUNTY_SCHOOL)
    make_user(session, "neighbour_reviewer", Role.county_reviewer, "520198")


def snapshot(session: Session, student: Student) -> tuple[Any, ...]:
    session.expire_all()
    fresh = session.get(Student, student.id)
    assert fresh is not None
    instances = session.scalar(select(func.count()).select_from(ProcessInstance)
                               .where(ProcessInstance.subject_id == student.id, ProcessInstance.process_id == "student_transfer"))
    return fresh.school.code, fresh.status, spans(session, fresh), instances


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


# 县内转学 -------------------------------------------------------------------------------------------


def test_in_county_started_by_the_sending_school_moves_the_same_record_and_splits_the_months(session: Session) -> None:
    student = active_student(session, 1)
    instance = in_county(session, student, reason="随父母迁居")
    assert instance.org_unit.code == SCHOOL_1 and instance.subject_id == student.id

    confirm = act(session, instance, "principal1", "confirm_sending")
    accept = act(session, instance, "principal2", "accept_receiving")
    approve = act(session, instance, "reviewer", "approve_transfer", {"decision": "approve", "comment": "同意"})
    assert [(t.role, t.org_unit.code) for t in (confirm, accept, approve)] == [
        ("school_principal", SCHOOL_1), ("school_principal", SCHOOL_2), ("county_reviewer", "520199")]

    session.refresh(student)
    assert (student.status, student.school.code) == (StudentStatus.active, SCHOOL_2)
    assert spans(session, student) == [(SCHOOL_1, "2023-09", "2025-02"), (SCHOOL_2, "2025-03", None)]
    # No month is paid at both schools, and none is lost in between.
    rows = periods(session, student)
    for month in months("2023-01", "2027-12"):
        covering = [p.school.code for p in rows if p.covers(month)]
        expected = [] if month < "2023-09" else [SCHOOL_1] if month < "2025-03" else [SCHOOL_2]
        assert covering == expected, month
    assert rows[1].instance_id == instance.id
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.transfer",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert entry.instance_id == instance.id and entry.reason == "随父母迁居"
    assert entry.before == {"school_code": SCHOOL_1, "enrolment_periods": [
        {"school_code": SCHOOL_1, "from_month": "2023-09", "to_month": None}]}
    assert entry.after["school_code"] == SCHOOL_2 and entry.after["change_month"] == "2025-03"
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]
    assert student.name not in instance.state and student.id_number not in instance.state


def test_in_county_started_by_the_receiving_school_names_the_student_by_id_number(session: Session) -> None:
    student = active_student(session, 2)
    instance = start(session, "registrar2", kind="in_county", id_number=student.id_number,
                     receiving_school_code=SCHOOL_2, change_month="2024-09")
    # Started at the receiving school (its registrar holds the role there); the sending school confirms first.
    assert instance.org_unit.code == SCHOOL_2
    confirm = open_task(session, instance.id)
    assert (confirm.task_id, confirm.org_unit.code) == ("confirm_sending", SCHOOL_1)

    for stranger in ("registrar2", "principal2", "registrar1"):
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=user(session, stranger), task_id=confirm.id, data=APPROVE)
    act(session, instance, "principal1", "confirm_sending")
    accept = open_task(session, instance.id)
    for stranger in ("principal1", "registrar1", "registrar2"):
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=user(session, stranger), task_id=accept.id, data=APPROVE)
    with pytest.raises(PermissionDenied):  # the county oversees it but does not act for the school
        workflows.claim_task(session, actor=user(session, "reviewer"), task_id=accept.id)
    act(session, instance, "principal2", "accept_receiving")
    act(session, instance, "reviewer", "approve_transfer")

    session.refresh(student)
    assert student.school.code == SCHOOL_2
    assert spans(session, student) == [(SCHOOL_1, "2023-09", "2024-08"), (SCHOOL_2, "2024-09", None)]


def test_each_school_sees_the_transfer_once_it_has_a_step_and_a_third_school_never(session: Session) -> None:
    student = active_student(session, 3)
    third = make_user(session, "transfer_principal3", Role.school_principal, SCHOOL_3)
    instance = in_county(session, student)
    with pytest.raises(NotFound):
        workflows.get_instance(session, actor=user(session, "principal2"), instance_id=instance.id)
    act(session, instance, "principal1", "confirm_sending")

    accept = open_task(session, instance.id)
    for username in ("principal2", "registrar2", "registrar1", "reviewer"):
        assert workflows.get_instance(session, actor=user(session, username), instance_id=instance.id) == instance
    assert [i.id for i in workflows.instances_about(session, actor=user(session, "registrar2"), subject_type="student",
                                                    subject_id=student.id)] == [instance.id]
    assert [t.id for t in workflows.list_tasks(session, actor=user(session, "principal2"))[0]] == [accept.id]
    with pytest.raises(NotFound):
        workflows.get_instance(session, actor=third, instance_id=instance.id)
    with pytest.raises(NotFound):
        workflows.get_task(session, actor=third, task_id=accept.id)
    assert accept.id not in [t.id for t in workflows.list_tasks(session, actor=third)[0]]
    assert workflows.instances_about(session, actor=third, subject_type="student", subject_id=student.id) == []


def test_a_rejection_leaves_the_student_where_they_were(session: Session) -> None:
    student = active_student(session, 4)
    before = snapshot(session, student)
    instance = in_county(session, student)
    act(session, instance, "principal1", "confirm_sending")
    act(session, instance, "principal2", "accept_receiving", {"decision": "reject", "comment": "本校学位已满"})
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]
    assert snapshot(session, student)[:3] == before[:3]


def test_a_return_goes_to_the_initiating_registrar_whose_revision_is_checked(session: Session) -> None:
    student = active_student(session, 5)
    instance = start(session, "registrar2", kind="in_county", id_number=student.id_number,
                     receiving_school_code=SCHOOL_2, change_month="2025-03")
    act(session, instance, "principal1", "confirm_sending")
    act(session, instance, "principal2", "accept_receiving")
    act(session, instance, "reviewer", "approve_transfer", {"decision": "return", "comment": "应为四月"})

    revise = open_task(session, instance.id)
    assert (revise.task_id, revise.role, revise.org_unit.code) == ("revise_transfer", "school_registrar", SCHOOL_2)
    with pytest.raises(RuleViolation) as err:
        workflows.complete_task(session, actor=user(session, "registrar2"), task_id=revise.id,
                                data={"change_month": "2023-08"})
    assert err.value.details == [{"field": "change_month", "message": "转学年月：不能早于入学年月 2023-09"}]
    assert open_task(session, instance.id).id == revise.id
    workflows.complete_task(session, actor=user(session, "registrar2"), task_id=revise.id,
                            data={"change_month": "2025-04", "reason": "家长申请"})
    act(session, instance, "principal1", "confirm_sending")
    act(session, instance, "principal2", "accept_receiving")
    act(session, instance, "reviewer", "approve_transfer")
    assert spans(session, student) == [(SCHOOL_1, "2023-09", "2025-03"), (SCHOOL_2, "2025-04", None)]


def test_a_second_transfer_after_one_is_applied_starts_from_the_new_school(session: Session) -> None:
    student = active_student(session, 6)
    first = in_county(session, student, change_month="2024-03")
    for username, step in (("principal1", "confirm_sending"), ("principal2", "accept_receiving"),
                           ("reviewer", "approve_transfer")):
        act(session, first, username, step)
    with pytest.raises(NotFound):  # the record is school 2's now: school 1 no longer sees it
        in_county(session, student, receiving_school_code=SCHOOL_3, change_month="2025-03")
    with pytest.raises(RuleViolation) as err:
        in_county(session, student, "registrar2", receiving_school_code=SCHOOL_3, change_month="2024-02")
    assert err.value.details == [{"field": "change_month", "message": "转学年月：不能早于在本校的在籍起始年月 2024-03"}]
    back = in_county(session, student, "registrar2", receiving_school_code=SCHOOL_1, change_month="2024-09")
    for username, step in (("principal2", "confirm_sending"), ("principal1", "accept_receiving"),
                           ("reviewer", "approve_transfer")):
        act(session, back, username, step)
    assert spans(session, student) == [(SCHOOL_1, "2023-09", "2024-02"), (SCHOOL_2, "2024-03", "2024-08"),
                                       (SCHOOL_1, "2024-09", None)]


def test_the_initiator_may_withdraw_before_the_other_school_acts_and_then_start_again(session: Session) -> None:
    student = active_student(session, 21)
    instance = start(session, "registrar2", kind="in_county", id_number=student.id_number,
                     receiving_school_code=SCHOOL_2, change_month="2025-03")
    with pytest.raises(PermissionDenied):
        workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance.id, reason="不是我发起的")
    workflows.withdraw(session, actor=user(session, "registrar2"), instance_id=instance.id, reason="家长改变主意")
    assert instance.status == "withdrawn"
    assert snapshot(session, student)[:3] == (SCHOOL_1, StudentStatus.active, [(SCHOOL_1, "2023-09", None)])
    assert in_county(session, student).status == "running"  # the guard let go


def test_a_step_left_past_its_deadline_is_flagged_overdue_in_the_inbox(session: Session) -> None:
    student = active_student(session, 22)
    opened = datetime(2025, 3, 2, 1, 0, tzinfo=UTC)
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_transfer",
                                          now=opened, data={"kind": "in_county", "student_id": student.id,
                                                            "receiving_school_code": SCHOOL_2, "change_month": "2025-03"})
    confirm = open_task(session, instance.id)
    workflows.advance_instance(session, instance_id=instance.id, now=datetime(2025, 3, 4, 1, 0, tzinfo=UTC))
    session.refresh(confirm)
    assert not confirm.overdue
    workflows.advance_instance(session, instance_id=instance.id, now=datetime(2025, 3, 5, 2, 0, tzinfo=UTC))
    session.refresh(confirm)
    assert confirm.overdue and confirm.status == TaskStatus.open


REJECT = {"decision": "reject", "comment": "材料不全"}
RETURN = {"decision": "return", "comment": "转学年月应为四月"}
# Who acts at each step of the two kinds a school sends, in order.
PATHS = {"in_county": [("principal1", "confirm_sending"), ("principal2", "accept_receiving"),
                       ("reviewer", "approve_transfer")],
         "out_of_county": [("principal1", "confirm_sending"), ("reviewer", "approve_transfer")]}


def up_to(session: Session, instance: ProcessInstance, kind: str, step: str, *,
          now: datetime | None = None) -> str:
    """Approves every step of `kind` before `step`; returns who acts at `step`."""
    path = PATHS[kind]
    index = [task_id for _, task_id in path].index(step)
    for username, task_id in path[:index]:
        act(session, instance, username, task_id, now=now)
    return path[index][0]


def audit_actions(session: Session, instance: ProcessInstance) -> set[str]:
    return set(session.scalars(select(AuditEntry.action).where(AuditEntry.instance_id == instance.id)))


@pytest.mark.parametrize(("kind", "step"), [
    ("in_county", "confirm_sending"), ("in_county", "approve_transfer"),
    ("out_of_county", "confirm_sending"), ("out_of_county", "approve_transfer"),
])
def test_a_rejection_by_the_sending_school_or_the_county_ends_the_transfer_and_changes_nothing(
        session: Session, kind: str, step: str) -> None:
    student = active_student(session, 25)
    instance = in_county(session, student, kind=kind)
    rejected = act(session, instance, up_to(session, instance, kind, step), step, REJECT)

    assert snapshot(session, student)[:3] == (SCHOOL_1, StudentStatus.active, [(SCHOOL_1, "2023-09", None)])
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]
    assert session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).all() == []
    assert (rejected.outcome, rejected.comment) == ("reject", "材料不全")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "task.complete",
                                                     AuditEntry.object_id == str(rejected.id))).one()
    assert entry.after["task_id"] == step and entry.reason == "材料不全"
    assert not {"student.transfer", "student.status_change"} & audit_actions(session, instance)


@pytest.mark.parametrize(("kind", "step"), [
    ("in_county", "confirm_sending"), ("in_county", "accept_receiving"),
    ("out_of_county", "confirm_sending"), ("out_of_county", "approve_transfer"),
])
def test_a_return_at_any_step_goes_to_the_initiating_registrar_and_the_revised_month_is_the_one_applied(
        session: Session, kind: str, step: str) -> None:
    student = active_student(session, 26)
    instance = in_county(session, student, kind=kind)
    act(session, instance, up_to(session, instance, kind, step), step, RETURN)

    revise = open_task(session, instance.id)
    assert (revise.task_id, revise.role, revise.org_unit.code) == ("revise_transfer", "school_registrar", SCHOOL_1)
    assert workflows.task_view(session, revise)[1].startswith("退回意见：转学年月应为四月")
    assert snapshot(session, student)[:3] == (SCHOOL_1, StudentStatus.active, [(SCHOOL_1, "2023-09", None)])
    workflows.complete_task(session, actor=user(session, "registrar1"), task_id=revise.id,
                            data={"change_month": "2025-04"})
    for username, task_id in PATHS[kind]:  # the whole way again, from the sending school's confirmation
        act(session, instance, username, task_id)

    fresh = session.get(Student, student.id)
    assert fresh is not None
    if kind == "in_county":
        assert (fresh.status, fresh.school.code) == (StudentStatus.active, SCHOOL_2)
        assert spans(session, fresh) == [(SCHOOL_1, "2023-09", "2025-03"), (SCHOOL_2, "2025-04", None)]
    else:
        assert (fresh.status, fresh.school.code) == (StudentStatus.transferred_out, SCHOOL_1)
        assert spans(session, fresh) == [(SCHOOL_1, "2023-09", "2025-03")]
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]


@pytest.mark.parametrize(("kind", "step", "days"), [
    ("in_county", "accept_receiving", 3), ("in_county", "approve_transfer", 5), ("out_of_county", "approve_transfer", 5),
])
def test_each_later_step_is_flagged_overdue_once_its_own_deadline_passes(
        session: Session, kind: str, step: str, days: int) -> None:
    student = active_student(session, 27)
    opened = datetime(2025, 3, 2, 1, 0, tzinfo=UTC)
    data = {"kind": kind, "student_id": student.id, "change_month": "2025-03",
            **({"receiving_school_code": SCHOOL_2} if kind == "in_county" else {})}
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_transfer",
                                          now=opened, data=data)
    reached = opened + timedelta(days=1)
    up_to(session, instance, kind, step, now=reached)
    task = open_task(session, instance.id)
    assert task.task_id == step

    # The deadline counts from the day the step was reached, not from the start.
    workflows.advance_instance(session, instance_id=instance.id, now=reached + timedelta(days=days, hours=-1))
    session.refresh(task)
    assert not task.overdue
    workflows.advance_instance(session, instance_id=instance.id, now=reached + timedelta(days=days, hours=1))
    session.refresh(task)
    assert task.overdue and task.status == TaskStatus.open
    assert session.get(ProcessInstance, instance.id).status == "running"  # type: ignore[union-attr]


def test_the_county_approval_is_the_reviewers_and_no_principal_or_registrar_may_give_it(session: Session) -> None:
    student = active_student(session, 28)
    instance = in_county(session, student)
    up_to(session, instance, "in_county", "approve_transfer")
    approve = open_task(session, instance.id)
    for stranger in ("principal1", "principal2", "registrar1", "registrar2"):
        refused(session, student, NotFound, lambda name=stranger: workflows.complete_task(
            session, actor=user(session, name), task_id=approve.id, data=APPROVE))
    assert open_task(session, instance.id).id == approve.id
    act(session, instance, "reviewer", "approve_transfer")
    assert snapshot(session, student)[0] == SCHOOL_2


# 转出县外 -------------------------------------------------------------------------------------------


def test_out_of_county_makes_the_student_transferred_out_from_the_change_month(session: Session) -> None:
    student = active_student(session, 7)
    instance = start(session, "registrar1", kind="out_of_county", student_id=student.id,
                     destination_school="遵义市某小学", change_month="2025-03")
    assert open_task(session, instance.id).task_id == "confirm_sending"
    act(session, instance, "principal1", "confirm_sending")
    approve = act(session, instance, "reviewer", "approve_transfer")
    assert approve.org_unit.code == "520199"

    session.refresh(student)
    assert (student.status, student.school.code) == (StudentStatus.transferred_out, SCHOOL_1)
    assert spans(session, student) == [(SCHOOL_1, "2023-09", "2025-02")]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.status_change",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert entry.instance_id == instance.id and "遵义市某小学" in (entry.reason or "")


def test_only_the_sending_registrar_starts_an_out_of_county_transfer(session: Session) -> None:
    student = active_student(session, 8)
    with pytest.raises(NotFound):
        start(session, "registrar2", kind="out_of_county", student_id=student.id, change_month="2025-03")
    with pytest.raises(PermissionDenied):
        start(session, "principal1", kind="out_of_county", student_id=student.id, change_month="2025-03")


# 县外转入 -------------------------------------------------------------------------------------------


def into_county(session: Session, day: int, username: str = "registrar2", **data: Any) -> ProcessInstance:
    student = data.pop("student", None) or student_data(seq=103, birth=born(day), school_code=SCHOOL_2,
                                                        enrolled_month="2021-09")
    return start(session, username, **{"kind": "into_county", "student": student, "origin_school": "遵义市某小学",
                                       "change_month": "2025-03", **data})


def test_into_county_needs_the_certificate_then_runs_the_duplicate_check_and_starts_the_subsidy_at_the_change_month(
        session: Session, store: LocalFileStore) -> None:
    instance = into_county(session, 9)
    student = session.get(Student, instance.subject_id)
    assert student is not None and student.status == StudentStatus.pending and student.school.code == SCHOOL_2
    attach = open_task(session, instance.id)
    assert (attach.task_id, attach.role, attach.org_unit.code) == ("attach_certificate", "school_registrar", SCHOOL_2)
    registrar = user(session, "registrar2")

    with pytest.raises(RuleViolation, match="请先在“附件”中上传转学证明"):
        workflows.complete_task(session, actor=registrar, task_id=attach.id, data={"transfer_certificate": {}})
    with pytest.raises(RuleViolation, match="PDF、JPEG 或 PNG"):
        attachments.attach(session, actor=registrar, task_id=attach.id, file_name="转学证明.docx",
                           data=b"PK\x03\x04 word", store=store)
    assert attachments.of_instance(session, instance) == []
    with pytest.raises(NotFound):  # the principal reviews later; the registrar's step is not theirs
        attachments.attach(session, actor=user(session, "principal2"), task_id=attach.id, file_name="a.pdf",
                           data=PDF, store=store)
    attachments.attach(session, actor=registrar, task_id=attach.id, file_name="转学证明.pdf", data=PDF, store=store)
    workflows.complete_task(session, actor=registrar, task_id=attach.id,
                            data={"transfer_certificate": {"certificate_no": "ZX-001"}})

    review = act(session, instance, "principal2", "review_transfer_in")
    confirm = act(session, instance, "reviewer", "confirm_transfer_in")
    assert (review.org_unit.code, confirm.org_unit.code) == (SCHOOL_2, "520199")
    session.refresh(student)
    assert student.status == StudentStatus.active and student.enrolled_month == "2021-09"
    assert spans(session, student) == [(SCHOOL_2, "2025-03", None)]
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.instance_id == instance.id)).all()
    assert {"attachment.add", "student.transfer_certificate", "student.activate"} <= set(actions)


def test_into_county_of_a_child_live_in_the_county_goes_to_the_county_as_a_duplicate(
        session: Session, store: LocalFileStore) -> None:
    existing = active_student(session, 10)
    data = student_data(seq=101, birth=born(10), school_code=SCHOOL_2)
    instance = into_county(session, 10, student=data)
    registrar = user(session, "registrar2")
    attach = open_task(session, instance.id)
    attachments.attach(session, actor=registrar, task_id=attach.id, file_name="证明.png", data=PNG, store=store)
    workflows.complete_task(session, actor=registrar, task_id=attach.id, data={"transfer_certificate": {}})

    resolve = open_task(session, instance.id)
    assert (resolve.task_id, resolve.org_unit.code) == ("resolve_transfer_in_duplicate", "520199")
    act(session, instance, "reviewer", "resolve_transfer_in_duplicate",
        {"decision": "reject", "comment": "该生在县内在籍，应办理县内转学"})
    pending = session.get(Student, instance.subject_id)
    assert pending is not None and pending.status == StudentStatus.voided
    session.refresh(existing)
    assert existing.status == StudentStatus.active and existing.school.code == SCHOOL_1


def test_a_returned_transfer_in_is_revised_by_the_registrar_and_checked_again(
        session: Session, store: LocalFileStore) -> None:
    instance = into_county(session, 23)
    registrar = user(session, "registrar2")
    attach = open_task(session, instance.id)
    attachments.attach(session, actor=registrar, task_id=attach.id, file_name="证明.pdf", data=PDF, store=store)
    workflows.complete_task(session, actor=registrar, task_id=attach.id, data={"transfer_certificate": {}})
    act(session, instance, "principal2", "review_transfer_in", {"decision": "return", "comment": "班级有误"})

    revise = open_task(session, instance.id)
    assert (revise.task_id, revise.org_unit.code) == ("revise_transfer_in", SCHOOL_2)
    data = student_data(seq=103, birth=born(23), school_code=SCHOOL_2, enrolled_month="2025-09", name="改名后")
    with pytest.raises(RuleViolation) as err:
        workflows.complete_task(session, actor=registrar, task_id=revise.id, data={"student": data})
    assert err.value.details == [{"field": "enrolled_month", "message": "入学年月：不能晚于转学年月 2025-03"}]
    workflows.complete_task(session, actor=registrar, task_id=revise.id,
                            data={"student": {**data, "enrolled_month": "2021-09", "class_name": "三年级（2）班"}})
    assert open_task(session, instance.id).task_id == "review_transfer_in"
    student = session.get(Student, instance.subject_id)
    assert student is not None and student.class_name == "三年级（2）班"
    assert session.get(ProcessInstance, instance.id).subject_label == "改名后"  # type: ignore[union-attr]


def with_certificate(session: Session, instance: ProcessInstance, store: LocalFileStore, *,
                     username: str = "registrar2", now: datetime | None = None) -> None:
    registrar = user(session, username)
    attach = open_task(session, instance.id)
    attachments.attach(session, actor=registrar, task_id=attach.id, file_name="证明.pdf", data=PDF, store=store)
    workflows.complete_task(session, actor=registrar, task_id=attach.id, data={"transfer_certificate": {}}, now=now)


def pending_of(session: Session, instance: ProcessInstance) -> Student:
    student = session.get(Student, instance.subject_id)
    assert student is not None
    session.refresh(student)
    return student


@pytest.mark.parametrize(("before", "step", "username"), [
    ([], "review_transfer_in", "principal2"),
    ([("principal2", "review_transfer_in")], "confirm_transfer_in", "reviewer"),
])
def test_into_county_rejected_by_the_principal_or_the_county_voids_its_pending_record(
        session: Session, store: LocalFileStore, before: list[tuple[str, str]], step: str, username: str) -> None:
    instance = into_county(session, 29)
    with_certificate(session, instance, store)
    for approver, task_id in before:
        act(session, instance, approver, task_id)
    act(session, instance, username, step, {"decision": "reject", "comment": "转学证明与学生信息不符"})

    student = pending_of(session, instance)
    assert (student.status, student.void_reason) == (StudentStatus.voided, "转学证明与学生信息不符")
    assert spans(session, student) == []
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]
    void = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.void",
                                                    AuditEntry.instance_id == instance.id)).one()
    assert void.reason == "转学证明与学生信息不符" and void.after == {"status": "voided"}
    assert "student.activate" not in audit_actions(session, instance)


def test_into_county_returned_at_the_duplicate_step_is_corrected_and_checked_again(
        session: Session, store: LocalFileStore) -> None:
    existing = active_student(session, 30)
    instance = into_county(session, 30, student=student_data(seq=101, birth=born(30), school_code=SCHOOL_2,
                                                             enrolled_month="2021-09"))
    with_certificate(session, instance, store)
    act(session, instance, "reviewer", "resolve_transfer_in_duplicate", {"decision": "return", "comment": "证件号录错"})

    revise = open_task(session, instance.id)
    assert (revise.task_id, revise.role, revise.org_unit.code) == ("revise_transfer_in", "school_registrar", SCHOOL_2)
    assert pending_of(session, instance).status == StudentStatus.pending
    corrected = student_data(seq=103, birth=born(30), school_code=SCHOOL_2, enrolled_month="2021-09")
    workflows.complete_task(session, actor=user(session, "registrar2"), task_id=revise.id, data={"student": corrected})
    # Checked again: no longer the ID of a pupil of the county, so on to the principal.
    act(session, instance, "principal2", "review_transfer_in")
    act(session, instance, "reviewer", "confirm_transfer_in")

    newcomer = pending_of(session, instance)
    assert (newcomer.status, newcomer.id_number, newcomer.school.code) == (
        StudentStatus.active, corrected["id_number"], SCHOOL_2)
    assert spans(session, newcomer) == [(SCHOOL_2, "2025-03", None)]
    session.refresh(existing)
    assert (existing.status, existing.school.code) == (StudentStatus.active, SCHOOL_1)
    assert spans(session, existing) == [(SCHOOL_1, "2023-09", None)]


def test_into_county_returned_by_the_county_goes_back_to_the_registrar_and_through_the_principal_again(
        session: Session, store: LocalFileStore) -> None:
    instance = into_county(session, 31)
    with_certificate(session, instance, store)
    act(session, instance, "principal2", "review_transfer_in")
    act(session, instance, "reviewer", "confirm_transfer_in", {"decision": "return", "comment": "班级有误"})

    revise = open_task(session, instance.id)
    assert (revise.task_id, revise.org_unit.code) == ("revise_transfer_in", SCHOOL_2)
    assert workflows.task_view(session, revise)[1].startswith("退回意见：班级有误")
    assert pending_of(session, instance).status == StudentStatus.pending
    workflows.complete_task(session, actor=user(session, "registrar2"), task_id=revise.id, data={"student": student_data(
        seq=103, birth=born(31), school_code=SCHOOL_2, enrolled_month="2021-09", class_name="三年级（2）班")})
    act(session, instance, "principal2", "review_transfer_in")
    act(session, instance, "reviewer", "confirm_transfer_in")

    student = pending_of(session, instance)
    assert (student.status, student.class_name) == (StudentStatus.active, "三年级（2）班")
    assert spans(session, student) == [(SCHOOL_2, "2025-03", None)]
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]


def test_the_county_confirmation_of_a_transfer_in_is_flagged_overdue_after_five_days(
        session: Session, store: LocalFileStore) -> None:
    opened = datetime(2025, 3, 2, 1, 0, tzinfo=UTC)
    instance, _ = workflows.start_process(
        session, actor=user(session, "registrar2"), process_id="student_transfer", now=opened,
        data={"kind": "into_county", "change_month": "2025-03", "student": student_data(
            seq=103, birth=born(32), school_code=SCHOOL_2, enrolled_month="2021-09")})
    with_certificate(session, instance, store, now=opened)
    reached = opened + timedelta(days=1)
    act(session, instance, "principal2", "review_transfer_in", now=reached)
    confirm = open_task(session, instance.id)
    assert confirm.task_id == "confirm_transfer_in"

    workflows.advance_instance(session, instance_id=instance.id, now=reached + timedelta(days=5, hours=-1))
    session.refresh(confirm)
    assert not confirm.overdue
    workflows.advance_instance(session, instance_id=instance.id, now=reached + timedelta(days=5, hours=1))
    session.refresh(confirm)
    assert confirm.overdue and confirm.status == TaskStatus.open
    assert pending_of(session, instance).status == StudentStatus.pending


def test_a_transfer_in_is_reviewed_by_its_own_principal_and_confirmed_by_its_own_county_only(
        session: Session, store: LocalFileStore) -> None:
    other_county(session)
    instance = into_county(session, 33)
    with_certificate(session, instance, store)
    review = open_task(session, instance.id)
    for stranger in ("principal1", "neighbour_principal", "registrar2"):
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=user(session, stranger), task_id=review.id, data=APPROVE)
    act(session, instance, "principal2", "review_transfer_in")
    confirm = open_task(session, instance.id)
    for stranger in ("neighbour_reviewer", "principal2", "registrar2"):
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=user(session, stranger), task_id=confirm.id, data=APPROVE)
    assert open_task(session, instance.id).id == confirm.id
    student = pending_of(session, instance)
    assert student.status == StudentStatus.pending and spans(session, student) == []
    act(session, instance, "reviewer", "confirm_transfer_in")
    assert pending_of(session, instance).status == StudentStatus.active


def test_withdrawing_a_transfer_in_voids_its_pending_record(session: Session) -> None:
    instance = into_county(session, 11)
    workflows.withdraw(session, actor=user(session, "registrar2"), instance_id=instance.id, reason="录错学校")
    pending = session.get(Student, instance.subject_id)
    assert pending is not None and pending.status == StudentStatus.voided


def test_out_of_one_county_and_into_another_never_pays_a_month_twice(session: Session, store: LocalFileStore) -> None:
    other_county(session)
    student = active_student(session, 12)
    out = start(session, "registrar1", kind="out_of_county", student_id=student.id,
                destination_school="邻县城关小学", change_month="2025-03")
    data = {**student_data(seq=101, birth=born(12), school_code=OTHER_COUNTY_SCHOOL)}
    into = into_county(session, 12, username="neighbour_registrar", student=data, origin_school="演示县城关镇中心小学")
    registrar_b = user(session, "neighbour_registrar")
    attach = open_task(session, into.id)
    attachments.attach(session, actor=registrar_b, task_id=attach.id, file_name="证明.pdf", data=PDF, store=store)
    workflows.complete_task(session, actor=registrar_b, task_id=attach.id, data={"transfer_certificate": {}})
    act(session, into, "neighbour_principal", "review_transfer_in")
    confirm = open_task(session, into.id)
    # Still active in the demo county: one ID is active in one place only (Art. 7).
    with pytest.raises(Conflict, match="已有在籍学生"):
        workflows.complete_task(session, actor=user(session, "neighbour_reviewer"), task_id=confirm.id, data=APPROVE)

    act(session, out, "principal1", "confirm_sending")
    act(session, out, "reviewer", "approve_transfer")
    act(session, into, "neighbour_reviewer", "confirm_transfer_in")
    newcomer = session.get(Student, into.subject_id)
    assert newcomer is not None and newcomer.id != student.id
    rows = periods(session, student) + periods(session, newcomer)
    for month in months("2023-01", "2027-12"):
        assert len([p for p in rows if p.covers(month)]) == (1 if month >= "2023-09" else 0), month


# Refused: a clear message, nothing changed ----------------------------------------------------------


def refused(session: Session, student: Student, error: type[DomainError], call: Any) -> DomainError:
    before = snapshot(session, student)
    with pytest.raises(error) as err:
        call()
    assert snapshot(session, student) == before
    return err.value


def test_in_county_to_a_school_of_another_county_is_refused(session: Session) -> None:
    other_county(session)
    student = active_student(session, 13)
    error = refused(session, student, RuleViolation,
                    lambda: in_county(session, student, receiving_school_code=OTHER_COUNTY_SCHOOL))
    assert error.details == [{"field": "receiving_school_code",
                              "message": "转入学校：邻县城关小学（2152019801）不在本县，县外学校请选择“转出县外”"}]


@pytest.mark.parametrize(("code", "message"), [
    ("2152019901", "转入学校：不能是学生现在就读的学校"),
    ("2152000000", "转入学校：找不到学校代码 2152000000"),
    ("520199101", "转入学校：找不到学校代码 520199101"),
])
def test_in_county_to_no_school_or_the_same_school_is_refused(session: Session, code: str, message: str) -> None:
    student = active_student(session, 14)
    error = refused(session, student, RuleViolation, lambda: in_county(session, student, receiving_school_code=code))
    assert error.details == [{"field": "receiving_school_code", "message": message}]


@pytest.mark.parametrize(("kind", "month", "message"), [
    ("in_county", "2023-08", "转学年月：不能早于入学年月 2023-09"),
    ("out_of_county", "2022-12", "转学年月：不能早于入学年月 2023-09"),
    ("in_county", "2025-13", "转学年月：“2025-13”不是有效年月（应为 YYYY-MM）"),
    ("out_of_county", "", "转学年月：“空”不是有效年月（应为 YYYY-MM）"),
])
def test_a_change_month_before_the_enrolment_month_or_no_month_is_refused(
        session: Session, kind: str, month: str, message: str) -> None:
    student = active_student(session, 15)
    error = refused(session, student, RuleViolation,
                    lambda: in_county(session, student, kind=kind, change_month=month))
    assert error.details == [{"field": "change_month", "message": message}]


def test_into_county_with_a_change_month_before_the_enrolment_month_creates_no_record(session: Session) -> None:
    count = session.scalar(select(func.count()).select_from(Student))
    with pytest.raises(RuleViolation) as err:
        into_county(session, 16, change_month="2021-08")
    assert err.value.details == [{"field": "change_month", "message": "转学年月：不能早于入学年月 2021-09"}]
    assert session.scalar(select(func.count()).select_from(Student)) == count


@pytest.mark.parametrize("second", [
    {"kind": "in_county", "receiving_school_code": SCHOOL_3},
    {"kind": "out_of_county"},
])
def test_a_student_with_an_open_request_cannot_be_transferred_again(session: Session, second: dict[str, Any]) -> None:
    student = active_student(session, 17)
    first = in_county(session, student)
    error = refused(session, student, Conflict,
                    lambda: start(session, "registrar1", student_id=student.id, change_month="2025-04", **second))
    assert f"已有办理中的“转学”（流程编号 {first.id}）" in error.message


def test_a_suspended_transfer_blocks_a_second_one_and_applies_alone_once_resumed(session: Session) -> None:
    student = active_student(session, 34)
    first = in_county(session, student)
    admin = user(session, "processadmin")
    process_admin.suspend(session, actor=admin, instance_id=first.id, reason="核查转入学校")
    error = refused(session, student, Conflict, lambda: in_county(session, student, receiving_school_code=SCHOOL_3,
                                                                  change_month="2025-04"))
    assert error.message == (f"张小明已有未办结的“转学”（流程编号 {first.id}，已暂停），"
                             "须待流程管理员恢复后办结或将其取消，再申请")
    assert error.details == [{"field": "student_id", "message": error.message}]

    process_admin.resume(session, actor=admin, instance_id=first.id)
    for username, task_id in PATHS["in_county"]:
        act(session, first, username, task_id)
    assert snapshot(session, student) == (SCHOOL_2, StudentStatus.active,
                                          [(SCHOOL_1, "2023-09", "2025-02"), (SCHOOL_2, "2025-03", None)], 1)


def test_a_transfer_stopped_in_error_blocks_a_second_one(session: Session) -> None:
    student = active_student(session, 35)
    first = in_county(session, student, kind="out_of_county")
    workflows.mark_error(session, first, element_id="transfer_out", message="转出县外失败", now=CONFIRMED)
    error = refused(session, student, Conflict, lambda: in_county(session, student, change_month="2025-04"))
    assert f"已有未办结的“转学”（流程编号 {first.id}，出错）" in error.message


@pytest.mark.parametrize("kind", ["in_county", "out_of_county"])
def test_a_transfer_applied_to_a_child_who_has_left_the_sending_school_is_refused(session: Session, kind: str) -> None:
    student = active_student(session, 36)
    stale = in_county(session, student, kind=kind)
    up_to(session, stale, kind, "approve_transfer")
    # Moved meanwhile by a request the guard never saw (filed while it counted running instances only).
    transfers.move_within_county(session, student_id=student.id, to_school_code=SCHOOL_3, change_month="2024-09",
                                 actor=None)
    approve = open_task(session, stale.id)
    error = refused(session, student, Conflict, lambda: workflows.complete_task(
        session, actor=user(session, "reviewer"), task_id=approve.id, data=APPROVE))
    assert error.message == ("该生已不在申请时的转出学校城关镇中心小学，现在就读新场乡中心小学：本次转学申请已过时，不能办理。"
                             "请驳回本申请；如仍需转学，由现在就读的学校重新申请")
    assert open_task(session, stale.id).id == approve.id  # the county's step waits for its rejection
    act(session, stale, "reviewer", "approve_transfer", REJECT)
    assert snapshot(session, student)[:3] == (SCHOOL_3, StudentStatus.active,
                                              [(SCHOOL_1, "2023-09", "2024-08"), (SCHOOL_3, "2024-09", None)])


def open_status_change(session: Session, student: Student) -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="status_change",
                                          data={"student_id": student.id, "to_status": "suspended",
                                                "effective_month": "2025-03", "reason": "因病休学"})
    return instance


def open_key_field_change(session: Session, student: Student) -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="key_field_change",
                                          data={"student_id": student.id, "changes": {"name": "张晓明"},
                                                "reason": "户口簿登记为新姓名，监护人申请更正"})
    return instance


def open_graduation_list(session: Session, student: Student) -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="status_change",
                                          data={"to_status": "graduated", "school_code": SCHOOL_1,
                                                "effective_month": "2026-07", "student_ids": [student.id]})
    assert instance.subject_type == "graduation_batch"
    return instance


SIXTH_GRADER = {"grade": 6, "class_name": "六年级（1）班"}  # a graduation list names the final grade only


@pytest.mark.parametrize("kind", ["in_county", "out_of_county"])
@pytest.mark.parametrize(("opener", "process_name", "overrides"), [
    (open_status_change, "学籍异动", {}), (open_key_field_change, "关键信息变更", {}),
    (open_graduation_list, "学籍异动", SIXTH_GRADER),
])
def test_an_open_status_change_key_field_change_or_graduation_list_blocks_a_transfer(
        session: Session, kind: str, opener: Callable[[Session, Student], ProcessInstance], process_name: str,
        overrides: dict[str, Any]) -> None:
    student = active_student(session, 37, **overrides)
    opened = opener(session, student)
    error = refused(session, student, Conflict, lambda: in_county(session, student, kind=kind))
    assert error.message == f"张小明已有办理中的“{process_name}”（流程编号 {opened.id}），须待其办结或撤回后再申请"


REPORTED_MARCH = "转学年月：城关镇中心小学已上报“2025年3月”报表，2025-03 及以前各月的数字已冻结，转学年月须晚于 2025-03"


@pytest.mark.parametrize(("kind", "year", "month", "submitted", "too_early", "allowed", "message"), [
    ("in_county", 2025, 3, datetime(2025, 4, 3, 2, 0, tzinfo=UTC), "2025-03", "2025-04", REPORTED_MARCH),
    ("out_of_county", 2025, 3, datetime(2025, 4, 3, 2, 0, tzinfo=UTC), "2024-12", "2025-04", REPORTED_MARCH),
    # The school-year report, due on 15 September, froze September; the rest of the year it only forecast.
    ("in_county", 2024, None, datetime(2024, 9, 12, 2, 0, tzinfo=UTC), "2024-09", "2024-10",
     "转学年月：城关镇中心小学已上报“2024–2025 学年”报表，2024-09 及以前各月的数字已冻结，转学年月须晚于 2024-09"),
])
def test_a_change_month_the_sending_school_has_already_reported_is_refused(
        session: Session, kind: str, year: int, month: int | None, submitted: datetime, too_early: str, allowed: str,
        message: str) -> None:
    student = active_student(session, 38)
    report_submissions.submit_school_report(session, actor=user(session, "principal1"), school_code=SCHOOL_1,
                                            year=year, month=month, now=submitted)
    error = refused(session, student, RuleViolation,
                    lambda: in_county(session, student, kind=kind, change_month=too_early))
    assert error.details == [{"field": "change_month", "message": message}]
    assert in_county(session, student, kind=kind, change_month=allowed).status == "running"


def test_a_report_submitted_while_the_transfer_waits_refuses_its_approval_until_the_month_is_moved(
        session: Session) -> None:
    student = active_student(session, 39)
    instance = in_county(session, student, change_month="2025-04")
    up_to(session, instance, "in_county", "approve_transfer")
    report_submissions.submit_school_report(session, actor=user(session, "registrar1"), school_code=SCHOOL_1,
                                            year=2025, month=4, now=datetime(2025, 5, 6, 2, 0, tzinfo=UTC))
    approve = open_task(session, instance.id)
    error = refused(session, student, RuleViolation, lambda: workflows.complete_task(
        session, actor=user(session, "reviewer"), task_id=approve.id, data=APPROVE))
    assert error.details == [{"field": "change_month", "message": "转学年月：城关镇中心小学已上报“2025年4月”报表，"
                              "2025-04 及以前各月的数字已冻结，转学年月须晚于 2025-04"}]

    act(session, instance, "reviewer", "approve_transfer", {"decision": "return", "comment": "四月已上报，请改为五月"})
    workflows.complete_task(session, actor=user(session, "registrar1"), task_id=open_task(session, instance.id).id,
                            data={"change_month": "2025-05"})
    for username, task_id in PATHS["in_county"]:
        act(session, instance, username, task_id)
    assert spans(session, student) == [(SCHOOL_1, "2023-09", "2025-04"), (SCHOOL_2, "2025-05", None)]


def test_the_receiving_school_cannot_find_a_child_of_another_county(session: Session) -> None:
    other_county(session)
    student = active_student(session, 18)
    error = refused(session, student, RuleViolation,
                    lambda: start(session, "neighbour_registrar", kind="in_county", id_number=student.id_number,
                                  receiving_school_code=OTHER_COUNTY_SCHOOL, change_month="2025-03"))
    assert [d["field"] for d in error.details] == ["id_number"] and student.name not in error.message


def test_the_id_number_is_read_as_entry_reads_it(session: Session) -> None:
    student = active_student(session, 24)
    typed = " ".join([student.id_number[:6], student.id_number[6:14], student.id_number[14:].lower()])
    found = transfers.find_by_id_number(session, actor=user(session, "registrar2"), id_number=typed)
    assert found.id == student.id
    assert transfers.preview(found) == {"name": "张小明", "sex": student.sex, "id_number": mask_id_number(student.id_number),
                                        "school_name": "城关镇中心小学", "grade": 3, "class_name": "三年级（1）班"}


def test_only_the_two_schools_registrars_may_start_an_in_county_transfer(session: Session) -> None:
    student = active_student(session, 19)
    make_user(session, "transfer_registrar3", Role.school_registrar, SCHOOL_3)
    refused(session, student, PermissionDenied,
            lambda: start(session, "transfer_registrar3", kind="in_county", id_number=student.id_number,
                          receiving_school_code=SCHOOL_2, change_month="2025-03"))
    refused(session, student, NotFound, lambda: in_county(session, student, "transfer_registrar3",
                                                          receiving_school_code=SCHOOL_3))


def test_a_student_who_is_not_active_cannot_be_transferred(session: Session) -> None:
    student = active_student(session, 20)
    out = start(session, "registrar1", kind="out_of_county", student_id=student.id, change_month="2025-03")
    act(session, out, "principal1", "confirm_sending")
    act(session, out, "reviewer", "approve_transfer")
    error = refused(session, student, DomainError, lambda: in_county(session, student))
    assert error.message == "只有在籍学生可以转学，该生为“已转出”"


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "sideways"}, "kind"),
    ({"kind": "in_county", "student_id": "12"}, "student_id"),
    ({"kind": "in_county", "reason": "x" * 501}, "reason"),
    ({"kind": "in_county", "surprise": 1}, "surprise"),
])
def test_start_data_of_the_wrong_shape_names_the_field(session: Session, data: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleViolation) as err:
        start(session, "registrar1", change_month="2025-03", **data)
    assert field in [d["field"] for d in err.value.details]
    assert find_org_unit(session, code=SCHOOL_2) is not None
