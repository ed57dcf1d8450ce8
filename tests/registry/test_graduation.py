"""毕业 by school list through status_change on a real database: the default list, edits that are refused
naming the student, one principal review and one county approval, all graduated or none."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import graduation, process_guards, students, workflows
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.graduation import BatchStatus, GraduationBatch
from registry.schools import School
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, TaskStatus
from tests.factories import SCHOOL_1, SCHOOL_2, admit, student_data, user

S = StudentStatus
CONFIRMED = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)


def sixth_grader(session: Session, seq: int, **overrides: Any) -> Student:
    return admit(session, now=CONFIRMED, seq=seq, birth=date(2014, 9, 17), grade=6, class_name="六年级（1）班",
                 name=f"毕业生{seq}", **overrides)


def ninth_grader(session: Session, seq: int) -> Student:
    """Admitted at the junior school (registrar2 → principal2 → reviewer)."""
    data = student_data(seq=seq, birth=date(2011, 10, 23), school_code=SCHOOL_2, grade=9, class_name="九年级（2）班",
                        name=f"初三{seq}")
    instance, _ = workflows.start_process(session, actor=user(session, "registrar2"), process_id="student_intake",
                                          data={"student": data}, now=CONFIRMED)
    for username in ("principal2", "reviewer"):
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                       HumanTask.status == TaskStatus.open)).one()
        workflows.complete_task(session, actor=user(session, username), task_id=task.id,
                                data={"decision": "approve"}, now=CONFIRMED)
    student = session.get(Student, instance.subject_id)
    assert student is not None
    session.refresh(student)
    return student


def submit(session: Session, student_ids: list[int] | None, *, school: str = SCHOOL_1, month: str = "2026-07",
           username: str = "registrar1", reason: str | None = None) -> ProcessInstance:
    data: dict[str, Any] = {"to_status": "graduated", "school_code": school, "effective_month": month}
    if student_ids is not None:
        data["student_ids"] = student_ids
    if reason is not None:
        data["reason"] = reason
    instance, _ = workflows.start_process(session, actor=user(session, username), process_id="status_change",
                                          data=data, now=NOW)
    return instance


def open_task(session: Session, instance: ProcessInstance) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()


def decide(session: Session, instance: ProcessInstance, username: str, decision: str = "approve",
           comment: str | None = None) -> None:
    data = {"decision": decision, **({"comment": comment} if comment else {})}
    workflows.complete_task(session, actor=user(session, username), task_id=open_task(session, instance).id,
                            data=data, now=NOW)


def batch_of(session: Session, instance: ProcessInstance) -> GraduationBatch:
    session.flush()
    batch = session.get(GraduationBatch, instance.subject_id)
    assert batch is not None
    session.refresh(batch)
    assert batch.instance_id == instance.id
    return batch


def periods(session: Session, student: Student) -> list[tuple[str, str | None]]:
    rows = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
                           .execution_options(populate_existing=True))
    return [(p.from_month, p.to_month) for p in rows]


def batches(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(GraduationBatch)) or 0


def test_the_list_graduates_every_student_after_one_review_and_one_approval(session: Session) -> None:
    pupils = [sixth_grader(session, seq) for seq in (301, 303, 305)]
    instance = submit(session, [p.id for p in pupils], reason="2026届六年级毕业")
    assert (instance.subject_type, instance.org_unit.code) == ("graduation_batch", SCHOOL_1)
    assert instance.subject_label == "城关镇中心小学六年级毕业 3 人"
    review = open_task(session, instance)
    assert (review.task_id, review.role) == ("review_change", "school_principal")
    assert "六年级毕业名单：共 3 人，毕业年月 2026-07" in workflows.task_view(session, review)[1]
    decide(session, instance, "principal1")
    assert all(session.get(Student, p.id).status == S.active for p in pupils)  # type: ignore[union-attr]
    approve = open_task(session, instance)
    assert (approve.task_id, approve.role, approve.org_unit.code) == ("approve_change", "county_reviewer", "520199")
    decide(session, instance, "reviewer")
    session.refresh(instance)
    assert instance.status == InstanceStatus.completed
    for pupil in pupils:
        session.refresh(pupil)
        assert pupil.status == S.graduated
        assert periods(session, pupil) == [("2023-09", "2026-06")]  # Art. 15: no subsidy from July
    assert batch_of(session, instance).status == BatchStatus.graduated


def test_the_default_list_is_every_active_student_of_the_final_grade(session: Session) -> None:
    pupils = [sixth_grader(session, seq) for seq in (307, 309)]
    third = admit(session, now=CONFIRMED, seq=311, birth=date(2017, 9, 17))
    school, grade, default = graduation.candidates(session, actor=user(session, "registrar1"), school_code=SCHOOL_1)
    assert (school.code, grade) == (SCHOOL_1, 6)
    assert {p.id for p in pupils} <= {s.id for s in default} and third.id not in {s.id for s in default}
    assert all(s.grade == 6 and s.status == S.active and s.school_id == school.id for s in default)
    instance = submit(session, None)
    listed = graduation.student_ids_of(session, batch_of(session, instance))
    assert listed == sorted(s.id for s in default)


def test_a_junior_school_graduates_grade_nine(session: Session) -> None:
    pupil = ninth_grader(session, 313)
    school, grade, default = graduation.candidates(session, actor=user(session, "registrar2"), school_code=SCHOOL_2)
    assert grade == 9 and pupil.id in {s.id for s in default}
    instance = submit(session, [pupil.id], school=SCHOOL_2, username="registrar2")
    decide(session, instance, "principal2")
    decide(session, instance, "reviewer")
    session.refresh(pupil)
    assert pupil.status == S.graduated


def test_a_student_of_another_grade_or_school_is_refused_by_name_and_nothing_is_written(session: Session) -> None:
    pupil = sixth_grader(session, 315)
    third = admit(session, now=CONFIRMED, seq=317, birth=date(2017, 9, 19), name="三年级学生")
    elsewhere = ninth_grader(session, 319)
    before = batches(session)
    with pytest.raises(RuleViolation) as err:
        submit(session, [pupil.id, third.id, elsewhere.id, 99_999_999])
    messages = [d["message"] for d in err.value.details]
    assert f"三年级学生（学生编号 {third.id}）：是3年级学生，不是毕业年级（六年级）" in messages
    assert f"学生编号 {elsewhere.id}：不是城关镇中心小学的学生" in messages
    assert "学生编号 99999999：找不到该学生" in messages
    assert "初三" not in err.value.message  # another school's child is not named to this registrar
    assert batches(session) == before
    session.refresh(pupil)
    assert pupil.status == S.active


def test_a_month_before_a_students_enrolment_is_refused_naming_the_student(session: Session) -> None:
    pupil = sixth_grader(session, 321)
    with pytest.raises(RuleViolation) as err:
        submit(session, [pupil.id], month="2023-08")
    assert err.value.details == [{"field": "effective_month",
                                  "message": f"毕业生321（学生编号 {pupil.id}）：毕业年月 2023-08 早于本次在籍起始年月 2023-09"}]
    with pytest.raises(RuleViolation) as err:
        submit(session, [pupil.id], month="2026-7")
    assert [d["field"] for d in err.value.details] == ["effective_month"]


def test_a_student_not_in_school_is_refused(session: Session) -> None:
    pupil = sixth_grader(session, 323)
    students.void_active(session, actor=user(session, "reviewer"), student_id=pupil.id, reason="重复录入")
    with pytest.raises(RuleViolation, match="状态为“已作废”，不是在籍学生"):
        submit(session, [pupil.id])


def test_an_empty_list_or_a_school_without_a_type_is_refused(session: Session) -> None:
    with pytest.raises(RuleViolation, match="毕业名单：没有学生"):
        submit(session, [])
    record = session.scalars(select(School).join(School.org_unit).where(School.org_unit.has(code=SCHOOL_1))).one()
    record.school_type = None
    session.flush()
    with pytest.raises(RuleViolation, match="未登记办学类型"):
        submit(session, None)


@pytest.mark.parametrize(("username", "school", "error"), [
    ("principal1", SCHOOL_1, PermissionDenied), ("reviewer", SCHOOL_1, PermissionDenied),
    ("registrar2", SCHOOL_1, RuleViolation), ("registrar1", "9999999999", RuleViolation)])
def test_only_the_schools_registrar_submits_its_list(session: Session, username: str, school: str,
                                                    error: type[Exception]) -> None:
    pupil = sixth_grader(session, 325)
    with pytest.raises(error):
        submit(session, [pupil.id], school=school, username=username)


@pytest.mark.parametrize(("deciding", "decision", "status"), [
    ("principal1", "return", BatchStatus.returned), ("principal1", "reject", BatchStatus.rejected),
    ("reviewer", "return", BatchStatus.returned), ("reviewer", "reject", BatchStatus.rejected)])
def test_a_list_returned_or_rejected_closes_unchanged_and_a_new_one_may_follow(
        session: Session, deciding: str, decision: str, status: str) -> None:
    pupil = sixth_grader(session, 327)
    instance = submit(session, [pupil.id])
    if deciding == "reviewer":
        decide(session, instance, "principal1")
    decide(session, instance, deciding, decision, "名单漏了两人")
    batch = batch_of(session, instance)
    assert (batch.status, batch.close_comment) == (status, "名单漏了两人")
    session.refresh(pupil)
    assert pupil.status == S.active and periods(session, pupil) == [("2023-09", None)]
    assert submit(session, [pupil.id]).status == InstanceStatus.running


def test_one_list_at_a_time_per_school_and_per_student(session: Session) -> None:
    first, second = sixth_grader(session, 329), sixth_grader(session, 331)
    instance = submit(session, [first.id])
    with pytest.raises(Conflict, match=f"已有办理中的毕业名单（流程 {instance.id}）"):
        submit(session, [second.id])
    with pytest.raises(RuleViolation, match=f"毕业生329（学生编号 {first.id}）：已有办理中的“学籍异动”"):
        submit(session, [first.id, second.id])
    # A listed student cannot be changed or transferred meanwhile: the shared guard sees the list.
    assert [i.id for i in process_guards.open_requests_for_student(session, student_id=first.id)] == [instance.id]
    assert [i.id for i in workflows.open_requests_for_student(session, student_id=first.id)] == [instance.id]
    with pytest.raises(Conflict, match="学籍异动"):
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="status_change", now=NOW,
                                data={"student_id": first.id, "to_status": "dropped_out",
                                      "effective_month": "2026-06", "reason": "辍学"})
    assert process_guards.open_requests_for_student(session, student_id=second.id) == []


def test_a_student_with_another_request_under_way_is_refused_by_name(session: Session) -> None:
    pupil = sixth_grader(session, 333)
    workflows.start_process(session, actor=user(session, "registrar1"), process_id="status_change", now=NOW,
                            data={"student_id": pupil.id, "to_status": "suspended", "effective_month": "2026-06",
                                  "reason": "因病休学"})
    with pytest.raises(RuleViolation, match=f"毕业生333（学生编号 {pupil.id}）：已有办理中的“学籍异动”"):
        submit(session, [pupil.id])


def test_if_one_student_cannot_graduate_nobody_does(session: Session) -> None:
    pupils = [sixth_grader(session, seq) for seq in (335, 337)]
    instance = submit(session, [p.id for p in pupils])
    decide(session, instance, "principal1")
    # Voided by the county meanwhile (entered twice): the approval must not graduate the others alone.
    students.void_active(session, actor=user(session, "reviewer"), student_id=pupils[1].id, reason="重复录入")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(InvalidTransition, match=f"毕业生337（学生编号 {pupils[1].id}）") as err:
        decide(session, instance, "reviewer")
    assert "整份名单均未办理毕业" in err.value.message
    savepoint.rollback()
    session.refresh(pupils[0])
    assert pupils[0].status == S.active and periods(session, pupils[0]) == [("2023-09", None)]
    assert open_task(session, instance).task_id == "approve_change"
    decide(session, instance, "reviewer", "return", "名单中有已作废学生，请重新提交")
    assert batch_of(session, instance).status == BatchStatus.returned


def test_withdrawing_a_list_closes_it(session: Session) -> None:
    pupil = sixth_grader(session, 339)
    instance = submit(session, [pupil.id])
    workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance.id, reason="名单不全",
                       now=NOW)
    assert batch_of(session, instance).status == BatchStatus.withdrawn
    assert process_guards.open_requests_for_student(session, student_id=pupil.id) == []


def test_the_list_as_each_role_may_read_it(session: Session) -> None:
    pupil = sixth_grader(session, 341)
    batch = batch_of(session, submit(session, [pupil.id]))
    full = graduation.to_read(session, batch, actor=user(session, "principal1"))
    assert [(s["name"], s["id_number"], s["class_name"]) for s in full["students"]] == [
        ("毕业生341", pupil.id_number, "六年级（1）班")]
    masked = graduation.to_read(session, batch, actor=user(session, "admin"))
    assert masked["students"][0]["id_number"] != pupil.id_number and "*" in masked["students"][0]["id_number"]
    assert graduation.default_month(date(2026, 6, 1)) == "2026-07"
    assert graduation.default_month(date(2026, 9, 1)) == "2027-07"


def refused(session: Session, instance: ProcessInstance, username: str) -> None:
    task = open_task(session, instance)
    with pytest.raises(NotFound, match=f"找不到任务 {task.id}"):
        workflows.complete_task(session, actor=user(session, username), task_id=task.id, data={"decision": "approve"},
                                now=NOW)
    assert open_task(session, instance).id == task.id


def test_only_the_schools_principal_reviews_the_list_and_only_the_county_approves_it(session: Session) -> None:
    pupil = sixth_grader(session, 343)
    instance = submit(session, [pupil.id])
    # The registrar who filed it, the county, another school's principal, the township: none reviews it.
    for username in ("registrar1", "reviewer", "principal2", "township1"):
        refused(session, instance, username)
    decide(session, instance, "principal1")
    assert open_task(session, instance).task_id == "approve_change"
    for username in ("principal1", "registrar1", "township1", "aidcenter"):
        refused(session, instance, username)
    batch = batch_of(session, instance)
    session.refresh(pupil)
    assert batch.status == BatchStatus.open and pupil.status == S.active
    assert periods(session, pupil) == [("2023-09", None)]

