"""student_intake through the service layer on a real database."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import students, workflows
from registry.audit import AuditEntry
from registry.db import utcnow
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.students import Student, StudentStatus
from registry.workflows import HumanTask, InstanceTimer, TaskStatus
from tests.factories import SCHOOL_2, student_data, user


def open_task(session: Session, instance_id: int) -> HumanTask:
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                   HumanTask.status == TaskStatus.open)).all()
    assert len(rows) == 1, [r.task_id for r in rows]
    return rows[0]


def start(session: Session, **overrides: object):  # type: ignore[no-untyped-def]
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(**overrides)})
    return instance


def test_intake_approved_by_principal_and_confirmed_by_county_makes_student_active(session: Session) -> None:
    instance = start(session)
    student = session.get(Student, instance.subject_id)
    assert student is not None and student.status == StudentStatus.pending

    review = open_task(session, instance.id)
    assert (review.task_id, review.role, review.org_unit.code) == ("review_intake", "school_principal", "2152019901")
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id,
                            data={"decision": "approve"})

    confirm = open_task(session, instance.id)
    assert (confirm.task_id, confirm.role) == ("confirm_intake", "county_reviewer")
    assert confirm.due_at is not None and confirm.due_at > utcnow() + timedelta(days=4)
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=confirm.id,
                            data={"decision": "approve", "comment": "核对无误"})

    session.refresh(student)
    assert student.status == StudentStatus.active
    assert [(p.school.code, p.from_month, p.to_month) for p in student.periods] == [("2152019901", "2023-09", None)]
    assert instance.status == "completed"
    assert session.get(InstanceTimer, instance.id) is None
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.instance_id == instance.id)).all()
    assert {"process.start", "task.complete", "student.activate"} <= set(actions)


def test_invalid_student_creates_nothing_and_names_each_field(session: Session) -> None:
    before = session.scalar(select(Student.id).order_by(Student.id.desc()).limit(1))
    data = student_data()
    data["id_number"] = data["id_number"][:-1] + ("0" if data["id_number"][-1] != "0" else "1")
    data["sex"] = "2"
    with pytest.raises(RuleViolation) as err:
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                data={"student": data})
    fields = {d["field"] for d in err.value.details}
    assert "id_number" in fields
    assert session.scalar(select(Student.id).order_by(Student.id.desc()).limit(1)) == before


def test_registrar_cannot_enter_a_student_of_another_school(session: Session) -> None:
    with pytest.raises(RuleViolation) as err:
        start(session, school_code=SCHOOL_2)
    assert err.value.details[0]["field"] == "school_code"


def test_principal_cannot_start_an_intake(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        workflows.start_process(session, actor=user(session, "principal1"), process_id="student_intake",
                                data={"student": student_data()})


def test_unknown_process_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="no_such_process", data={})


def test_principal_return_loops_back_to_registrar_who_revises(session: Session) -> None:
    instance = start(session)
    review = open_task(session, instance.id)
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id,
                            data={"decision": "return", "comment": "班级填错了"})
    revise = open_task(session, instance.id)
    assert (revise.task_id, revise.role) == ("revise_intake", "school_registrar")
    workflows.complete_task(session, actor=user(session, "registrar1"), task_id=revise.id,
                            data={"student": student_data(class_name="三年级（2）班")})
    student = session.get(Student, instance.subject_id)
    assert student is not None and student.class_name == "三年级（2）班"
    again = open_task(session, instance.id)
    assert again.task_id == "review_intake"
    # Workflow state holds ids and decisions, never the child's personal data.
    assert student.id_number not in instance.state and "张小明" not in instance.state


def test_return_without_a_comment_is_refused_and_changes_nothing(session: Session) -> None:
    instance = start(session)
    review = open_task(session, instance.id)
    with pytest.raises(RuleViolation) as err:
        workflows.complete_task(session, actor=user(session, "principal1"), task_id=review.id,
                                data={"decision": "return"})
    assert err.value.details[0]["field"] == "comment"
    assert open_task(session, instance.id).id == review.id


def test_county_reject_voids_the_pending_record(session: Session) -> None:
    instance = start(session)
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance.id).id,
                            data={"decision": "approve"})
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, instance.id).id,
                            data={"decision": "reject", "comment": "查无此人"})
    student = session.get(Student, instance.subject_id)
    assert student is not None and student.status == StudentStatus.voided
    assert student.void_reason == "查无此人"
    assert instance.status == "completed"


def test_same_id_number_pending_elsewhere_goes_to_the_county_to_resolve(session: Session) -> None:
    first = start(session, seq=457)
    # The same child entered again at another school of the county, by that school's registrar.
    second, _ = workflows.start_process(session, actor=user(session, "registrar2"), process_id="student_intake",
                                        data={"student": student_data(seq=457, school_code=SCHOOL_2)})
    assert open_task(session, first.id).task_id == "review_intake"
    resolve = open_task(session, second.id)
    assert (resolve.task_id, resolve.role) == ("resolve_duplicate", "county_reviewer")
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=resolve.id,
                            data={"decision": "reject", "comment": "与城关小学重复"})
    dup = session.get(Student, second.subject_id)
    assert dup is not None and dup.status == StudentStatus.voided


def test_a_second_active_record_for_one_id_is_refused_at_confirmation(session: Session) -> None:
    first = start(session, seq=459)
    second, _ = workflows.start_process(session, actor=user(session, "registrar2"), process_id="student_intake",
                                        data={"student": student_data(seq=459, school_code=SCHOOL_2)})
    # The county lets the second through the duplicate check, then both reach confirmation.
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, second.id).id,
                            data={"decision": "approve"})
    for instance, principal in ((first, "principal1"), (second, "principal2")):
        workflows.complete_task(session, actor=user(session, principal), task_id=open_task(session, instance.id).id,
                                data={"decision": "approve"})
    workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, first.id).id,
                            data={"decision": "approve"})
    with pytest.raises(Conflict, match="已有在籍"):
        workflows.complete_task(session, actor=user(session, "reviewer"), task_id=open_task(session, second.id).id,
                                data={"decision": "approve"})


def test_completed_task_cannot_be_completed_again(session: Session) -> None:
    instance = start(session)
    review = open_task(session, instance.id)
    principal = user(session, "principal1")
    workflows.complete_task(session, actor=principal, task_id=review.id, data={"decision": "approve"})
    with pytest.raises(InvalidTransition):
        workflows.complete_task(session, actor=principal, task_id=review.id, data={"decision": "approve"})


def test_principal_of_another_school_does_not_see_the_task(session: Session) -> None:
    instance = start(session)
    review = open_task(session, instance.id)
    with pytest.raises(NotFound):
        workflows.complete_task(session, actor=user(session, "principal2"), task_id=review.id,
                                data={"decision": "approve"})
    tasks, _ = workflows.list_tasks(session, actor=user(session, "principal2"))
    assert review.id not in [t.id for t in tasks]
    tasks, _ = workflows.list_tasks(session, actor=user(session, "principal1"))
    assert review.id in [t.id for t in tasks]


def test_township_officer_sees_students_of_its_schools_but_not_their_tasks(session: Session) -> None:
    instance = start(session)
    township = user(session, "township1")
    assert students.get_student(session, actor=township, student_id=instance.subject_id).id == instance.subject_id
    tasks, _ = workflows.list_tasks(session, actor=township)
    assert tasks == []


def test_overdue_timer_flags_the_county_task_and_leaves_it_open(session: Session) -> None:
    instance = start(session)
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance.id).id,
                            data={"decision": "approve"})
    confirm = open_task(session, instance.id)
    timer = session.get(InstanceTimer, instance.id)
    assert timer is not None
    due = timer.due_at
    assert workflows.claim_due_instance(session, now=due - timedelta(seconds=1)) != instance.id
    workflows.advance_instance(session, instance_id=instance.id, now=due - timedelta(hours=1))
    session.refresh(confirm)
    assert not confirm.overdue
    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(seconds=1))
    session.refresh(confirm)
    assert confirm.overdue and confirm.status == TaskStatus.open
    assert session.get(InstanceTimer, instance.id) is None
    # Firing again changes nothing.
    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(days=1))
    assert open_task(session, instance.id).id == confirm.id


def test_same_name_birth_date_and_sex_under_another_id_is_a_warning_not_a_refusal(session: Session) -> None:
    start(session, seq=141)
    # The same child re-entered with a different (e.g. mistyped) ID number: flagged, still accepted.
    _, warnings = workflows.start_process(session, actor=user(session, "registrar2"), process_id="student_intake",
                                          data={"student": student_data(seq=143, school_code=SCHOOL_2)})
    near = [w for w in warnings if w.code == "near_duplicate"]
    assert len(near) == 1 and near[0].severity == "warning" and "城关镇中心小学" in near[0].message
