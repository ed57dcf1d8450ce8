"""关键信息变更 (Art. 14) on a real database: a locked record changes only through the guardian's
application with its signed scan, the school's review and the county's approval."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import applications, attachments, key_field_requests, process_guards, workflows
from registry.audit import AuditEntry
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.file_store import LocalFileStore
from registry.key_field_requests import KeyFieldRequest, RequestStatus
from registry.students import Student
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, TaskStatus
from tests.factories import SCHOOL_1, admit, fire_overdue_flag, make_id_number, user

CONFIRMED = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)  # locked 30 days later by default
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
BIRTH = date(2014, 7, 3)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
REASON = "户口簿登记为新姓名，监护人申请更正"


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def enrolled(session: Session, seq: int, **overrides: Any) -> Student:
    return admit(session, now=CONFIRMED, seq=seq, birth=overrides.pop("birth", BIRTH), name="王小红", **overrides)


def file(session: Session, store: LocalFileStore, student: Student, changes: dict[str, Any], *,
         username: str = "registrar1", reason: str = REASON) -> ProcessInstance:
    return applications.file_with_scan(session, actor=user(session, username), process_id="key_field_change",
                                       data={"student_id": student.id, "changes": changes, "reason": reason},
                                       scan_name="申请书.pdf", scan=PDF, confirmed=True, store=store, now=NOW)


def open_task(session: Session, instance: ProcessInstance) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()


def decide(session: Session, instance: ProcessInstance, username: str, decision: str, comment: str | None = None,
           task_id: str | None = None) -> HumanTask:
    task = open_task(session, instance)
    if task_id is not None:
        assert task.task_id == task_id
    data = {"decision": decision, **({"comment": comment} if comment else {})}
    workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=data, now=NOW)
    return task


def request_of(session: Session, instance: ProcessInstance) -> KeyFieldRequest:
    request = key_field_requests.for_instance(session, instance_id=instance.id)
    assert request is not None
    session.refresh(request)
    return request


def counts(session: Session) -> tuple[int, int]:
    return (session.scalar(select(func.count()).select_from(KeyFieldRequest)) or 0,
            session.scalar(select(func.count()).select_from(ProcessInstance)
                           .where(ProcessInstance.process_id == "key_field_change")) or 0)


def test_a_locked_record_changes_after_school_review_and_county_approval_with_before_and_after(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 101)
    old_id = student.id_number
    new_id = make_id_number(birth=BIRTH, seq=103)  # same birth date and sex (odd: male)
    instance = file(session, store, student, {"name": "王晓红", "id_number": new_id})
    review = open_task(session, instance)
    assert (review.task_id, review.role) == ("review_change", "school_principal")
    assert [a.file_name for a in attachments.of_instance(session, instance)] == ["申请书.pdf"]

    decide(session, instance, "principal1", "approve", task_id="review_change")
    approve = open_task(session, instance)
    assert (approve.task_id, approve.role) == ("approve_change", "county_reviewer")
    # The county approves: its step is the county's (520199), not the school's like the review before it.
    assert (review.org_unit.code, approve.org_unit.code) == (SCHOOL_1, "520199")
    data, text = workflows.task_view(session, approve)
    assert "新的身份证件号已在全县查重，无重复" in text and "姓名、身份证件号" in text
    decide(session, instance, "reviewer", "approve")

    session.refresh(student)
    session.refresh(instance)
    assert (student.name, student.id_number) == ("王晓红", new_id)
    assert instance.status == InstanceStatus.completed
    request = request_of(session, instance)
    assert request.status == RequestStatus.applied and request.before == {"name": "王小红", "id_number": old_id}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.key_field_change",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert entry.before == {"name": "王小红", "id_number": old_id}
    assert entry.after == {"name": "王晓红", "id_number": new_id}
    assert entry.instance_id == instance.id and entry.reason == REASON
    assert entry.actor is not None and entry.actor.username == "reviewer"


def test_before_the_lock_the_registrar_is_sent_to_the_direct_edit(session: Session, store: LocalFileStore) -> None:
    student = admit(session, now=datetime(2026, 3, 1, 2, 0, tzinfo=UTC), seq=105, birth=BIRTH)
    before = counts(session)
    with pytest.raises(InvalidTransition, match=f"/students/{student.id}/edit"):
        file(session, store, student, {"name": "王晓红"})
    assert counts(session) == before


@pytest.mark.parametrize(("username", "error"), [("principal1", PermissionDenied), ("reviewer", PermissionDenied),
                                                 ("registrar2", NotFound)])
def test_only_the_registrar_of_the_students_school_files(session: Session, store: LocalFileStore, username: str,
                                                         error: type[Exception]) -> None:
    student = enrolled(session, 107)
    before = counts(session)
    with pytest.raises(error):
        file(session, store, student, {"name": "王晓红"}, username=username)
    assert counts(session) == before


@pytest.mark.parametrize(("changes", "reason", "fields"), [
    ({"grade": 4}, REASON, ["grade"]),
    ({"id_number": "52010220140703"}, REASON, ["id_number"]),
    ({"name": "王小红"}, REASON, ["name"]),
    ({"birth_date": "2014-07-05"}, REASON, ["birth_date"]),  # no longer the ID number's birth date
    ({"name": "王晓红"}, "  ", ["reason"]),
    ({}, REASON, ["changes"]),
])
def test_bad_applications_are_refused_naming_the_field_and_nothing_is_written(
        session: Session, store: LocalFileStore, changes: dict, reason: str, fields: list[str]) -> None:
    student = enrolled(session, 109)
    before = counts(session)
    with pytest.raises(RuleViolation) as err:
        file(session, store, student, changes, reason=reason)
    assert [d["field"] for d in err.value.details] == fields
    assert counts(session) == before
    session.refresh(student)
    assert student.name == "王小红"


def test_the_scan_and_the_confirmation_are_required_and_reported_with_the_field_errors(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 111)
    before = counts(session)
    with pytest.raises(RuleViolation) as err:
        applications.file_with_scan(session, actor=user(session, "registrar1"), process_id="key_field_change",
                                    data={"student_id": student.id, "changes": {"id_number": "x"}, "reason": REASON},
                                    scan_name="申请书.docx", scan=b"PK\x03\x04 word", confirmed=False, store=store,
                                    now=NOW)
    assert [d["field"] for d in err.value.details] == ["id_number", "file", "confirmed"]
    assert "PDF、JPEG 或 PNG" in err.value.message
    assert counts(session) == before


def test_the_application_cannot_reach_the_school_or_the_county_without_the_scan(session: Session,
                                                                              store: LocalFileStore) -> None:
    """Through the API: start, then complete the upload step without uploading."""
    student = enrolled(session, 113)
    registrar = user(session, "registrar1")
    instance, _ = workflows.start_process(session, actor=registrar, process_id="key_field_change", now=NOW,
                                          data={"student_id": student.id, "changes": {"name": "王晓红"},
                                                "reason": REASON})
    submit = open_task(session, instance)
    assert (submit.task_id, submit.role) == ("submit_application", "school_registrar")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(RuleViolation, match="请先上传监护人签字的申请书扫描件") as err:
        workflows.complete_task(session, actor=registrar, task_id=submit.id, data={"confirmed": True}, now=NOW)
    assert err.value.details == [{"field": "file", "message": "缺少申请书扫描件"}]
    savepoint.rollback()
    with pytest.raises(RuleViolation, match="PDF、JPEG 或 PNG"):
        attachments.attach(session, actor=registrar, task_id=submit.id, file_name="scan.gif", data=b"GIF89a...",
                           store=store)
    assert open_task(session, instance).id == submit.id
    attachments.attach(session, actor=registrar, task_id=submit.id, file_name="申请书.jpg",
                       data=b"\xff\xd8\xff\xe0" + b"\0" * 32, store=store)
    workflows.complete_task(session, actor=registrar, task_id=submit.id, data={"confirmed": True}, now=NOW)
    assert open_task(session, instance).task_id == "review_change"


def test_a_return_loops_back_and_the_revised_application_is_what_changes(session: Session,
                                                                         store: LocalFileStore) -> None:
    student = enrolled(session, 115)
    old_id = student.id_number
    instance = file(session, store, student, {"name": "王晓红", "id_number": make_id_number(birth=BIRTH, seq=117)})
    decide(session, instance, "principal1", "return", "身份证号不必改，只改姓名")
    revise = open_task(session, instance)
    assert (revise.task_id, revise.role) == ("revise_application", "school_registrar")
    registrar = user(session, "registrar1")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(RuleViolation) as err:
        workflows.complete_task(session, actor=registrar, task_id=revise.id, now=NOW,
                                data={"key_field_change": {"sex": "9", "reason": "更正"}})
    assert [d["field"] for d in err.value.details] == ["sex"]
    savepoint.rollback()
    workflows.complete_task(session, actor=registrar, task_id=revise.id, now=NOW,
                            data={"key_field_change": {"name": "王晓红", "reason": "只更正姓名"}})
    decide(session, instance, "principal1", "approve")
    decide(session, instance, "reviewer", "return", "请补充户口簿页")
    assert open_task(session, instance).task_id == "revise_application"
    workflows.complete_task(session, actor=registrar, task_id=open_task(session, instance).id, now=NOW,
                            data={"key_field_change": {"name": "王晓红", "reason": "只更正姓名，已补户口簿页"}})
    decide(session, instance, "principal1", "approve")
    decide(session, instance, "reviewer", "approve")
    session.refresh(student)
    assert (student.name, student.id_number) == ("王晓红", old_id)
    request = request_of(session, instance)
    assert request.changes == {"name": "王晓红"} and request.reason == "只更正姓名，已补户口簿页"


@pytest.mark.parametrize("rejecting", ["principal1", "reviewer"])
def test_a_rejection_ends_with_the_reason_recorded_and_nothing_changed(session: Session, store: LocalFileStore,
                                                                      rejecting: str) -> None:
    student = enrolled(session, 119 if rejecting == "principal1" else 121)
    instance = file(session, store, student, {"name": "王晓红"})
    if rejecting == "reviewer":
        decide(session, instance, "principal1", "approve")
    decide(session, instance, rejecting, "reject", "户口簿与申请不符")
    session.refresh(student)
    session.refresh(instance)
    assert student.name == "王小红" and instance.status == InstanceStatus.completed
    request = request_of(session, instance)
    assert (request.status, request.close_comment) == (RequestStatus.rejected, "户口簿与申请不符")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.key_field_request_rejected",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert (entry.reason, entry.instance_id) == ("户口簿与申请不符", instance.id)
    assert process_guards.open_requests_for_student(session, student_id=student.id) == []


def test_a_new_id_number_live_elsewhere_is_shown_to_the_county_and_cannot_be_approved(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 123)
    other = admit(session, now=CONFIRMED, seq=125, birth=BIRTH, name="王小兰", school_code="2152019901")
    instance = file(session, store, student, {"id_number": other.id_number})
    decide(session, instance, "principal1", "approve")
    approve = open_task(session, instance)
    data, text = workflows.task_view(session, approve)
    assert "县内已有 1 条在籍或待审核的学籍记录" in text
    review = key_field_requests.review_of(session, request=request_of(session, instance),
                                          actor=user(session, "reviewer"))
    assert [(d["name"], d["id_number"]) for d in review["duplicates"]] == [("王小兰", other.id_number)]
    assert review["id_check"] == {"id_change": True, "conflict": True, "matches": [other.id]}
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(Conflict, match="一人一号"):
        decide(session, instance, "reviewer", "approve")
    savepoint.rollback()
    decide(session, instance, "reviewer", "reject", "新证件号已有在籍学籍，请核实")
    session.refresh(student)
    assert student.id_number != other.id_number


def test_the_review_shows_old_and_new_values_masked_for_roles_that_may_not_read_ids(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 127)
    new_id = make_id_number(birth=BIRTH, seq=129)
    instance = file(session, store, student, {"id_number": new_id})
    request = request_of(session, instance)
    full = key_field_requests.review_of(session, request=request, actor=user(session, "reviewer"))
    assert full["rows"] == [{"field": "id_number", "label": "身份证件号", "current": student.id_number,
                             "requested": new_id}]
    masked = key_field_requests.review_of(session, request=request, actor=user(session, "admin"))
    assert masked["rows"][0]["requested"] == new_id[:6] + "********" + new_id[-4:]
    assert key_field_requests.form_values(request) == {"key_field_change": {"id_number": new_id, "reason": REASON}}


def test_one_open_request_per_student(session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 131)
    instance = file(session, store, student, {"name": "王晓红"})
    with pytest.raises(Conflict, match=f"已有办理中的“关键信息变更”（流程编号 {instance.id}）"):
        file(session, store, student, {"name": "王小鸿"})
    with pytest.raises(Conflict, match="关键信息变更"):
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="status_change", now=NOW,
                                data={"student_id": student.id, "to_status": "suspended",
                                      "effective_month": "2026-03", "reason": "因病休学"})
    assert [i.id for i in workflows.open_requests_for_student(session, student_id=student.id)] == [instance.id]


def test_withdrawn_before_submitting_the_request_closes_and_the_student_is_free_again(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 133)
    registrar = user(session, "registrar1")
    instance, _ = workflows.start_process(session, actor=registrar, process_id="key_field_change", now=NOW,
                                          data={"student_id": student.id, "changes": {"name": "王晓红"},
                                                "reason": REASON})
    workflows.withdraw(session, actor=registrar, instance_id=instance.id, reason="监护人撤回申请", now=NOW)
    request = request_of(session, instance)
    assert (request.status, request.close_comment) == (RequestStatus.withdrawn, "监护人撤回申请")
    assert file(session, store, student, {"name": "王晓红"}).status == InstanceStatus.running


def test_the_registrar_may_withdraw_after_the_upload_until_the_principal_takes_it_up(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 135)
    registrar = user(session, "registrar1")
    instance = file(session, store, student, {"name": "王晓红"})
    assert workflows.may_withdraw(session, actor=registrar, instance=instance)
    workflows.claim_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance).id)
    with pytest.raises(InvalidTransition, match="下一环节已开始办理"):
        workflows.withdraw(session, actor=registrar, instance_id=instance.id, reason="填错了", now=NOW)
    workflows.unclaim_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance).id)
    workflows.withdraw(session, actor=registrar, instance_id=instance.id, reason="填错了", now=NOW)
    assert request_of(session, instance).status == RequestStatus.withdrawn


def test_only_the_principal_of_the_students_school_reviews_and_only_the_county_approves(
        session: Session, store: LocalFileStore) -> None:
    student = enrolled(session, 137)
    instance = file(session, store, student, {"name": "王晓红"})
    review = open_task(session, instance)
    for username in ("registrar1", "reviewer", "principal2"):
        with pytest.raises(NotFound, match=f"找不到任务 {review.id}"):
            workflows.complete_task(session, actor=user(session, username), task_id=review.id,
                                    data={"decision": "approve"}, now=NOW)
    session.refresh(review)
    assert (review.status, review.completed_by_id) == (TaskStatus.open, None)
    assert open_task(session, instance).id == review.id
    decide(session, instance, "principal1", "approve", task_id="review_change")
    approve = open_task(session, instance)
    with pytest.raises(NotFound, match=f"找不到任务 {approve.id}"):
        workflows.complete_task(session, actor=user(session, "principal1"), task_id=approve.id,
                                data={"decision": "approve"}, now=NOW)
    assert open_task(session, instance).id == approve.id
    session.refresh(student)
    assert student.name == "王小红" and request_of(session, instance).status == RequestStatus.open
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "student.key_field_change", AuditEntry.object_id == str(student.id))) == 0


def test_an_overdue_county_approval_is_flagged_and_stays_open_to_approve(session: Session,
                                                                         store: LocalFileStore) -> None:
    student = enrolled(session, 139)
    instance = file(session, store, student, {"name": "王晓红"})
    decide(session, instance, "principal1", "approve")
    approve = open_task(session, instance)
    assert approve.task_id == "approve_change"
    fire_overdue_flag(session, instance, approve, due=NOW + timedelta(days=5))  # "P5D" from when the step opened
    session.refresh(student)
    assert student.name == "王小红"  # the timer decides nothing
    decide(session, instance, "reviewer", "approve")
    session.refresh(student)
    assert student.name == "王晓红"

