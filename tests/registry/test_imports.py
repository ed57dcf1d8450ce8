"""batch_intake on a real database: upload, check, principal, county confirmation with exclusions."""

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry import imports, students, workflows
from registry.audit import AuditEntry
from registry.db import utcnow
from registry.errors import InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.file_store import LocalFileStore
from registry.imports import BatchStatus, ImportBatch, ImportRow, RowOutcome
from registry.student_files import COLUMNS
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.workflows import HumanTask, TaskStatus
from tests.factories import SCHOOL_1, SCHOOL_2, admit, student_data, user

TODAY = date(2025, 10, 8)
HEADERS = [c.header for c in COLUMNS]


def pupil(seq: int, **overrides: Any) -> dict[str, Any]:
    # A birth date of its own per test family keeps ID numbers apart from other tests' students.
    return student_data(**{"seq": seq, "birth": date(2016, 5, 21), "name": f"测试{seq:03d}", **overrides})


def xlsx(people: list[dict[str, Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    for person in people:
        sheet.append([person.get(c.field) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv(people: list[dict[str, Any]]) -> bytes:
    lines = [",".join(HEADERS)] + [",".join(str(p.get(c.field) or "") for c in COLUMNS) for p in people]
    return ("\r\n".join(lines) + "\r\n").encode("gb18030")


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def upload_and_check(session: Session, sessions: sessionmaker[Session], store: LocalFileStore, data: bytes, *,
                     username: str = "registrar1", school: str = SCHOOL_1, name: str = "名单.xlsx") -> ImportBatch:
    batch, created = imports.upload(session, actor=user(session, username), school_code=school, file_name=name,
                                    data=data, store=store)
    assert created and batch.status == BatchStatus.queued
    session.commit()
    assert imports.claim_next(session, now=utcnow()) == batch.id
    session.commit()
    imports.check_batch(sessions, batch.id, store=store, today=TODAY)
    session.expire_all()
    return session.get(ImportBatch, batch.id)


def rows_of(session: Session, batch: ImportBatch) -> dict[int, ImportRow]:
    return {r.row_number: r for r in session.scalars(select(ImportRow).where(ImportRow.batch_id == batch.id))}


def open_task(session: Session, instance_id: int) -> HumanTask:
    [task] = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.status == TaskStatus.open)).all()
    return task


def submit_and_approve(session: Session, batch: ImportBatch) -> Any:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="batch_intake",
                                          data={"batch_id": batch.id})
    review = open_task(session, instance.id)
    assert (review.task_id, review.role) == ("review_batch", "school_principal")
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id, data={"decision": "approve"})
    return instance


def test_rows_are_checked_against_the_rules_the_file_and_the_county(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    here = admit(session, seq=801, birth=date(2016, 5, 21), name="已在册")
    elsewhere, _ = students.register_pending(session, actor=user(session, "registrar2"),
                                             data=pupil(803, school_code=SCHOOL_2), today=TODAY)
    bad_digit = pupil(805)
    bad_digit["id_number"] = bad_digit["id_number"][:-1] + ("0" if bad_digit["id_number"][-1] != "0" else "1")
    people = [pupil(807), pupil(809), pupil(801), pupil(803), bad_digit, pupil(811), pupil(811, name="重复行")]
    batch = upload_and_check(session, sessions, store, xlsx(people))

    assert batch.status == BatchStatus.validated
    assert (batch.rows_total, batch.rows_done) == (7, 7)
    rows = rows_of(session, batch)
    assert [rows[n].outcome for n in range(2, 9)] == [
        RowOutcome.new, RowOutcome.new, RowOutcome.existing, RowOutcome.conflict, RowOutcome.invalid,
        RowOutcome.invalid, RowOutcome.invalid]
    assert "本校已有此学生" in rows[4].note
    assert "演示县第二小学" in rows[5].note or elsewhere.school.name in rows[5].note
    assert any("校验" in e for e in rows[6].errors)
    assert any("重复" in e for e in rows[7].errors)
    assert batch.counts == {"new": 2, "invalid": 3, "existing": 1, "conflict": 1, "imported": 0, "excluded": 0}
    _, report = imports.report_of(session, actor=user(session, "registrar1"), batch_id=batch.id, store=store)
    sheet = load_workbook(io.BytesIO(report), read_only=True).worksheets[0]
    messages = {row[0]: " ".join(str(v) for v in row[-2:] if v) for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "校验位" in messages[6] and "本校已有此学生" in messages[4] and "县内" in messages[5]
    assert "身份证件号" not in messages[2] and "县内" not in messages[2]
    # Nothing reaches the registry before the county confirms.
    assert session.scalar(select(func.count()).select_from(Student).where(Student.name.in_(["测试807", "测试809"]))) == 0
    assert here.status == StudentStatus.active


def test_confirmed_batch_creates_active_students_with_enrolment_and_history(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    people = [pupil(821), pupil(823), pupil(825), pupil(827)]
    batch = upload_and_check(session, sessions, store, xlsx(people))
    instance = submit_and_approve(session, batch)
    confirm = open_task(session, instance.id)
    assert (confirm.task_id, confirm.role, confirm.org_unit.code) == ("confirm_batch", "county_reviewer", SCHOOL_1)
    assert session.get(ImportBatch, batch.id).status == BatchStatus.submitted

    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=confirm.id,
                            data={"decision": "approve", "excluded_rows": "3, 5"})
    session.expire_all()
    batch = session.get(ImportBatch, batch.id)
    assert batch.status == BatchStatus.confirmed
    assert batch.counts["imported"] == 2 and batch.counts["excluded"] == 2
    rows = rows_of(session, batch)
    assert [rows[n].outcome for n in (2, 3, 4, 5)] == [RowOutcome.imported, RowOutcome.excluded,
                                                       RowOutcome.imported, RowOutcome.excluded]
    imported = [session.get(Student, rows[n].student_id) for n in (2, 4)]
    assert [s.name for s in imported] == ["测试821", "测试825"]
    for student in imported:
        assert student.status == StudentStatus.active and student.confirmed_at is not None
        assert student.school.code == SCHOOL_1 and student.created_by_id == user(session, "registrar1").id
        [period] = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)).all()
        assert (period.from_month, period.to_month, period.instance_id) == ("2023-09", None, instance.id)
        [entry] = students.history(session, student=student)
        assert entry.action == "student.import" and entry.instance_id == instance.id
        assert entry.actor_id == user(session, "reviewer").id
    assert workflows.get_instance(session, actor=user(session, "reviewer"), instance_id=instance.id).status == "completed"
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "import.confirm", AuditEntry.object_id == str(batch.id))) == 1


def test_the_same_file_twice_and_a_corrected_copy_create_no_duplicates(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    people = [pupil(841), pupil(843)]
    data = xlsx(people)
    batch = upload_and_check(session, sessions, store, data)
    again, created = imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1,
                                    file_name="名单(1).xlsx", data=data, store=store)
    assert not created and again.id == batch.id

    instance = submit_and_approve(session, batch)
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, instance.id).id,
                            data={"decision": "approve"})
    again, created = imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1,
                                    file_name="名单.xlsx", data=data, store=store)
    assert not created and again.id == batch.id  # a confirmed batch still holds its file

    # The same children again in another file (a CSV in GB18030, plus one new child): only the new one.
    second = upload_and_check(session, sessions, store, csv([*people, pupil(845)]), name="名单.csv")
    assert [r.outcome for r in rows_of(session, second).values()] == [RowOutcome.existing, RowOutcome.existing,
                                                                      RowOutcome.new]
    assert session.scalar(select(func.count()).select_from(Student).where(
        Student.id_number.in_([p["id_number"] for p in people]))) == 2


def test_a_batch_with_nothing_to_import_cannot_be_submitted(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    broken = pupil(851, sex="9")
    batch = upload_and_check(session, sessions, store, xlsx([broken]))
    with pytest.raises(RuleViolation, match="没有可导入"):
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="batch_intake",
                                data={"batch_id": batch.id})


def test_returned_batch_imports_nothing_and_keeps_the_comment(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(861)]))
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="batch_intake",
                                          data={"batch_id": batch.id})
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance.id).id,
                            data={"decision": "return", "comment": "班级名称不统一"})
    session.expire_all()
    batch = session.get(ImportBatch, batch.id)
    assert (batch.status, batch.comment) == (BatchStatus.returned, "班级名称不统一")
    assert session.scalar(select(func.count()).select_from(Student).where(Student.name == "测试861")) == 0


def test_rejected_by_the_county_imports_nothing(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(863)]))
    instance = submit_and_approve(session, batch)
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, instance.id).id,
                            data={"decision": "reject", "comment": "不是本校学生名单"})
    session.expire_all()
    assert session.get(ImportBatch, batch.id).status == BatchStatus.rejected
    assert session.scalar(select(func.count()).select_from(Student).where(Student.name == "测试863")) == 0


def test_unknown_excluded_rows_are_refused_and_nothing_changes(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(871), pupil(873)]))
    instance = submit_and_approve(session, batch)
    task = open_task(session, instance.id)
    session.commit()
    with pytest.raises(RuleViolation, match="第 9 行不在本批"):
        workflows.complete_task(session, actor=user(session, "reviewer"), task_id=task.id,
                                data={"decision": "approve", "excluded_rows": "2, 9"})
    session.rollback()
    session.expire_all()
    assert session.get(ImportBatch, batch.id).status == BatchStatus.submitted
    assert session.get(HumanTask, task.id).status == TaskStatus.open


def test_the_state_at_confirmation_decides(session: Session, sessions: sessionmaker[Session],
                                           store: LocalFileStore) -> None:
    """A child entered and confirmed at another school after the check is held back, not imported twice."""
    batch = upload_and_check(session, sessions, store, xlsx([pupil(881), pupil(883)]))
    instance = submit_and_approve(session, batch)
    meanwhile, _ = students.register_pending(session, actor=user(session, "registrar2"),
                                             data=pupil(883, school_code=SCHOOL_2), today=TODAY)
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, instance.id).id,
                            data={"decision": "approve"})
    session.expire_all()
    rows = rows_of(session, batch)
    assert (rows[2].outcome, rows[3].outcome) == (RowOutcome.imported, RowOutcome.conflict)
    assert "县内" in rows[3].note
    assert session.scalar(select(func.count()).select_from(Student).where(
        Student.id_number == meanwhile.id_number)) == 1


def test_two_schools_listing_one_child_both_hold_the_row_back(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    first = upload_and_check(session, sessions, store, xlsx([pupil(891)]))
    second = upload_and_check(session, sessions, store, xlsx([pupil(891, school_code=SCHOOL_2)]),
                              username="registrar2", school=SCHOOL_2)
    assert rows_of(session, first)[2].outcome == RowOutcome.new  # checked when nothing else listed the child
    assert rows_of(session, second)[2].outcome == RowOutcome.conflict
    assert "第 " in rows_of(session, second)[2].note


def test_a_row_for_another_school_is_an_error(session: Session, sessions: sessionmaker[Session],
                                              store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(893, school_code=SCHOOL_2)]))
    [row] = rows_of(session, batch).values()
    assert row.outcome == RowOutcome.invalid and any("不是本次上传的学校" in e for e in row.errors)


def test_a_file_that_is_no_student_list_is_refused_as_a_whole(
        session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, b"%PDF-1.7 not a spreadsheet", name="名单.pdf")
    assert batch.status == BatchStatus.refused and batch.rows_total == 0
    assert "名单.pdf" in batch.problems[0]["message"]
    assert rows_of(session, batch) == {}
    with pytest.raises(InvalidTransition):
        imports.submit(session, actor=user(session, "registrar1"), batch_id=batch.id)


def test_only_the_schools_registrar_uploads(session: Session, store: LocalFileStore) -> None:
    data = xlsx([pupil(895)])
    for username in ("principal1", "registrar2", "reviewer"):
        with pytest.raises(PermissionDenied):
            imports.upload(session, actor=user(session, username), school_code=SCHOOL_1, file_name="a.xlsx",
                           data=data, store=store)
    with pytest.raises(RuleViolation, match="空"):
        imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1, file_name="a.xlsx",
                       data=b"", store=store)


def test_other_schools_do_not_see_a_batch(session: Session, sessions: sessionmaker[Session],
                                          store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(897)]))
    with pytest.raises(NotFound):
        imports.get_batch(session, actor=user(session, "registrar2"), batch_id=batch.id)
    assert imports.get_batch(session, actor=user(session, "reviewer"), batch_id=batch.id).id == batch.id
    listed, _ = imports.list_batches(session, actor=user(session, "registrar2"))
    assert batch.id not in [b.id for b in listed]


def test_rows_seen_by_a_role_without_full_ids_are_masked(session: Session, sessions: sessionmaker[Session],
                                                         store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(899)]))
    full, _ = imports.batch_rows(session, actor=user(session, "registrar1"), batch=batch)
    masked, _ = imports.batch_rows(session, actor=user(session, "township1"), batch=batch)
    assert full[0]["id_number"] == pupil(899)["id_number"]
    assert masked[0]["id_number"] != full[0]["id_number"] and "*" in masked[0]["id_number"]
    with pytest.raises(PermissionDenied):
        imports.report_of(session, actor=user(session, "township1"), batch_id=batch.id, store=store)


def test_progress_is_committed_while_checking(session: Session, sessions: sessionmaker[Session],
                                              store: LocalFileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("registry.student_files.validation.PROGRESS_EVERY", 2)
    batch, _ = imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1, file_name="a.xlsx",
                              data=xlsx([pupil(seq) for seq in range(701, 711, 2)]), store=store)
    imports.claim(session, batch_id=batch.id, now=utcnow())
    session.commit()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        with sessions() as other:  # another session sees what is committed so far
            stored = other.get(ImportBatch, batch.id)
            seen.append((done, stored.rows_done))

    imports.check_batch(sessions, batch.id, store=store, today=TODAY, on_progress=progress)
    assert seen == [(0, 0), (2, 2), (4, 4), (5, 5)]


def test_a_worker_takes_a_batch_once_and_a_silent_one_is_taken_over(session: Session, store: LocalFileStore) -> None:
    batch, _ = imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1, file_name="a.xlsx",
                              data=xlsx([pupil(713)]), store=store)
    now = utcnow()
    assert imports.claim_next(session, now=now) == batch.id
    assert imports.claim_next(session, now=now) is None
    with pytest.raises(InvalidTransition):
        imports.claim(session, batch_id=batch.id, now=now)
    assert imports.claim_next(session, now=now + imports.STALE_AFTER + timedelta(seconds=1)) == batch.id


def test_discarding_a_checked_batch(session: Session, sessions: sessionmaker[Session], store: LocalFileStore) -> None:
    batch = upload_and_check(session, sessions, store, xlsx([pupil(715)]))
    with pytest.raises(PermissionDenied):
        imports.discard(session, actor=user(session, "principal1"), batch_id=batch.id)
    imports.discard(session, actor=user(session, "registrar1"), batch_id=batch.id)
    assert session.get(ImportBatch, batch.id).status == BatchStatus.discarded
    with pytest.raises(InvalidTransition):
        imports.submit(session, actor=user(session, "registrar1"), batch_id=batch.id)


@pytest.mark.parametrize(("text", "expected"), [
    ("", set()), ("  ", set()), (None, set()), ("5", {5}), ("5, 17,30-32", {5, 17, 30, 31, 32}),
    ("5，6、7；8 9", {5, 6, 7, 8, 9}), ("3 - 4", {3, 4}),
])
def test_row_numbers_the_reviewer_types(text: str | None, expected: set[int]) -> None:
    assert imports.parse_row_numbers(text) == expected


@pytest.mark.parametrize("text", ["abc", "5-", "-5", "9-3", "1-999999", "5,,6"])
def test_row_numbers_that_make_no_sense_are_refused(text: str) -> None:
    with pytest.raises(RuleViolation, match="排除的行号"):
        imports.parse_row_numbers(text)


def test_failed_check_is_said_on_the_batch(session: Session, store: LocalFileStore) -> None:
    batch, _ = imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1, file_name="a.xlsx",
                              data=xlsx([pupil(717)]), store=store)
    imports.mark_failed(session, batch_id=batch.id)
    session.expire_all()
    failed = session.get(ImportBatch, batch.id)
    assert failed.status == BatchStatus.failed and "出错" in failed.problems[0]["message"]
