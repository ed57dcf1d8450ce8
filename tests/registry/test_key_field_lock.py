"""Direct corrections of an active record, and the key-field lock of Art. 14 (到期即锁)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import county_policy, students
from registry.audit import AuditEntry
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.org_units import get_org_unit
from tests.factories import SCHOOL_2, admit, make_id_number, user

CONFIRMED = datetime(2026, 9, 20, 2, 0, tzinfo=UTC)  # 10:00 in Guizhou
TODAY = date(2026, 9, 25)


def test_registrar_corrects_an_ordinary_field_with_before_after_and_reason(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    students.update_student(session, actor=user(session, "registrar1"), student_id=student.id,
                            changes={"class_name": "三年级（3）班", "guardian_phone": "13900002222"},
                            today=TODAY + timedelta(days=200), reason="分班调整")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.update",
                                                     AuditEntry.object_id == str(student.id))).one()
    periods_before, periods_after = entry.before.pop("enrolment_periods"), entry.after.pop("enrolment_periods")
    assert entry.before == {"class_name": "三年级（1）班", "guardian_phone": "13800001234"}
    assert entry.after == {"class_name": "三年级（3）班", "guardian_phone": "13900002222"}
    assert entry.reason == "分班调整"
    # The new class counts from the month of the correction (2027-04); the months before keep the old one.
    assert [(p["from_month"], p["to_month"], p["class_name"]) for p in periods_before] == [
        ("2023-09", None, "三年级（1）班")]
    assert [(p["from_month"], p["to_month"], p["class_name"]) for p in periods_after] == [
        ("2023-09", "2027-03", "三年级（1）班"), ("2027-04", None, "三年级（3）班")]


def test_key_fields_are_correctable_until_the_grace_period_ends_then_locked(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    registrar = user(session, "registrar1")
    assert students.key_fields_lock_date(session, student) == date(2026, 10, 20)  # 30 days by default
    students.update_student(session, actor=registrar, student_id=student.id, changes={"name": "张晓明"},
                            today=date(2026, 10, 19))
    with pytest.raises(Conflict, match="key_field_change") as err:
        students.update_student(session, actor=registrar, student_id=student.id, changes={"name": "张明"},
                                today=date(2026, 10, 20))
    assert err.value.details == [{"field": "name", "message": "已锁定"}]
    # Other fields stay editable after the lock.
    students.update_student(session, actor=registrar, student_id=student.id, changes={"height_cm": 131.5},
                            today=date(2026, 10, 20))


def test_a_lock_date_set_by_the_county_for_the_school_year_wins(session: Session) -> None:
    county = get_org_unit(session, code="520199")
    county_policy.update_policy(session, actor=user(session, "admin"), county=county,
                                changes={"key_field_lock_dates": {"2026": "2026-09-30"}, "key_field_grace_days": 60})
    student = admit(session, now=CONFIRMED)
    assert students.key_fields_lock_date(session, student) == date(2026, 9, 30)
    with pytest.raises(Conflict):
        students.update_student(session, actor=user(session, "registrar1"), student_id=student.id,
                                changes={"sex": "2", "id_number": make_id_number(seq=124)}, today=date(2026, 9, 30))


def test_county_policy_is_validated_and_only_the_county_admin_sets_it(session: Session) -> None:
    county = get_org_unit(session, code="520199")
    with pytest.raises(PermissionDenied):
        county_policy.update_policy(session, actor=user(session, "reviewer"), county=county,
                                    changes={"key_field_grace_days": 10})
    with pytest.raises(RuleViolation) as err:
        county_policy.update_policy(session, actor=user(session, "admin"), county=county,
                                    changes={"key_field_grace_days": -1,
                                             "key_field_lock_dates": {"2026": "2026-07-01"}, "colour": 1})
    assert {d["field"] for d in err.value.details} == {"key_field_grace_days", "key_field_lock_dates.2026", "colour"}


def test_fields_that_change_the_subsidy_need_a_process(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    for changes in ({"school_code": SCHOOL_2}, {"boarding_mode": "2"}, {"boarding_allowance": True},
                    {"enrolled_month": "2024-09"}):
        with pytest.raises(Conflict, match="流程"):
            students.update_student(session, actor=user(session, "registrar1"), student_id=student.id,
                                    changes=changes, today=TODAY)


def test_an_id_number_already_live_in_the_county_is_refused(session: Session) -> None:
    first = admit(session, now=CONFIRMED, seq=131)
    second = admit(session, now=CONFIRMED, seq=133)
    with pytest.raises(Conflict, match="一人一号"):
        students.update_student(session, actor=user(session, "registrar1"), student_id=second.id,
                                changes={"id_number": first.id_number}, today=TODAY)


def test_invalid_corrections_name_the_field_and_change_nothing(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    with pytest.raises(RuleViolation) as err:
        students.update_student(session, actor=user(session, "registrar1"), student_id=student.id,
                                changes={"guardian_phone": "123", "nickname": "x"}, today=TODAY)
    assert {d["field"] for d in err.value.details} == {"nickname"}
    with pytest.raises(RuleViolation) as err:
        students.update_student(session, actor=user(session, "registrar1"), student_id=student.id,
                                changes={"guardian_phone": "123"}, today=TODAY)
    assert [d["field"] for d in err.value.details] == ["guardian_phone"]
    session.refresh(student)
    assert student.guardian_phone == "13800001234"


def test_who_may_correct(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    with pytest.raises(PermissionDenied):
        students.update_student(session, actor=user(session, "principal1"), student_id=student.id,
                                changes={"class_name": "x班"}, today=TODAY)
    with pytest.raises(NotFound):
        students.update_student(session, actor=user(session, "registrar2"), student_id=student.id,
                                changes={"class_name": "x班"}, today=TODAY)


def test_a_pending_record_is_corrected_in_the_intake_process_not_directly(session: Session) -> None:
    from registry import workflows
    from tests.factories import student_data

    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data()})
    with pytest.raises(InvalidTransition, match="退回修改"):
        students.update_student(session, actor=user(session, "registrar1"), student_id=instance.subject_id,
                                changes={"class_name": "x班"}, today=TODAY)


# --- the approved change (key_field_change applies it) -------------------------------------------

LOCKED_DAY = date(2027, 3, 1)


def test_an_approved_change_is_applied_to_a_locked_record_with_history(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    new_id = make_id_number(birth=date(2017, 3, 15), seq=123)
    students.apply_key_field_change(session, student_id=student.id, reason="户口本出生日期有误",
                                    changes={"birth_date": "2017-03-15", "id_number": new_id},
                                    actor=user(session, "reviewer"), today=LOCKED_DAY, instance_id=None)
    session.refresh(student)
    assert (student.birth_date, student.id_number) == (date(2017, 3, 15), new_id)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.key_field_change",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert entry.before == {"birth_date": "2017-03-14", "id_number": make_id_number(seq=123)}
    assert entry.after == {"birth_date": "2017-03-15", "id_number": new_id}
    assert entry.reason == "户口本出生日期有误"


def test_an_approved_change_keeps_the_rules_and_one_person_one_number(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    other = admit(session, now=CONFIRMED, seq=125, name="李四")
    reviewer = user(session, "reviewer")
    with pytest.raises(RuleViolation, match="不是关键信息|只能更改"):
        students.apply_key_field_change(session, student_id=student.id, changes={"grade": 4}, reason="x",
                                        actor=reviewer, today=LOCKED_DAY)
    with pytest.raises(RuleViolation):  # the ID's birth date no longer matches
        students.apply_key_field_change(session, student_id=student.id, changes={"birth_date": "2017-03-20"},
                                        reason="x", actor=reviewer, today=LOCKED_DAY)
    with pytest.raises(Conflict, match="一人一号"):
        students.apply_key_field_change(session, student_id=student.id, reason="x", actor=reviewer, today=LOCKED_DAY,
                                        changes={"id_number": other.id_number, "sex": other.sex})
    with pytest.raises(RuleViolation, match="相同"):
        students.apply_key_field_change(session, student_id=student.id, changes={"name": student.name}, reason="x",
                                        actor=reviewer, today=LOCKED_DAY)
