"""学籍异动 and 作废 on a real database: which status may follow which, and what happens to the subsidy months."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import students, workflows
from registry.audit import AuditEntry
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.student_status import TRANSITIONS, change_status
from registry.students import STATUS_LABELS, EnrolmentPeriod, Student, StudentStatus
from registry.workflows import ProcessInstance
from tests.factories import admit, make_id_number, student_data, user

S = StudentStatus
CONFIRMED = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)


def periods(session: Session, student: Student) -> list[tuple[str, str | None]]:
    rows = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
                           .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
                           .execution_options(populate_existing=True))
    return [(p.from_month, p.to_month) for p in rows]


def entries(session: Session, student: Student, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(student.id),
                                                         AuditEntry.action == action).order_by(AuditEntry.id)))


def change(session: Session, student: Student, to_status: str, month: str, **kwargs: Any) -> Student:
    kwargs.setdefault("reason", "学籍异动审批通过")
    return change_status(session, student_id=student.id, to_status=to_status, effective_month=month,
                         actor=kwargs.pop("actor", user(session, "reviewer")), **kwargs)


def intake_instance(session: Session, student: Student) -> int:
    return session.scalars(select(ProcessInstance.id).where(ProcessInstance.subject_id == student.id)).one()


# Leaving 在籍: Art. 15, the subsidy ends from the change month ------------------------------------


@pytest.mark.parametrize("to_status", sorted(TRANSITIONS[S.active]))
def test_leaving_active_closes_the_period_with_the_month_before_the_change(session: Session, to_status: str) -> None:
    student = admit(session, now=CONFIRMED)
    assert periods(session, student) == [("2023-09", None)]
    change(session, student, to_status, "2025-03")
    assert student.status == to_status
    assert periods(session, student) == [("2023-09", "2025-02")]
    period = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)).one()
    assert period.covers("2025-02") and not period.covers("2025-03") and not period.covers("2023-08")


def test_a_change_in_january_ends_the_period_in_december(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    change(session, student, S.suspended, "2025-01")
    assert periods(session, student) == [("2023-09", "2024-12")]


def test_a_change_in_the_first_month_leaves_a_period_that_covers_no_month(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    change(session, student, S.dropped_out, "2023-09")
    assert periods(session, student) == [("2023-09", "2023-08")]
    period = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)).one()
    assert not any(period.covers(m) for m in ("2023-08", "2023-09", "2023-10", "2030-01"))


def test_the_change_month_may_not_precede_the_open_period(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    with pytest.raises(RuleViolation, match="变更年月：2023-08 早于本次在籍起始年月 2023-09") as err:
        change(session, student, S.graduated, "2023-08")
    assert [d["field"] for d in err.value.details] == ["effective_month"]
    assert student.status == S.active and periods(session, student) == [("2023-09", None)]


def test_a_change_decided_ahead_keeps_the_subsidy_until_its_month(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    change(session, student, S.graduated, "2026-07")
    assert periods(session, student) == [("2023-09", "2026-06")]


def test_every_change_is_audited_with_status_months_reason_and_instance(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    instance_id = intake_instance(session, student)
    change(session, student, S.suspended, "2025-03", reason="因病休学一年", instance_id=instance_id)
    entry = entries(session, student, "student.status_change")[-1]
    assert entry.actor is not None and entry.actor.username == "reviewer"
    assert entry.reason == "因病休学一年" and entry.instance_id == instance_id
    assert entry.before == {"status": "active", "enrolment_period": {
        "school_code": "2152019901", "from_month": "2023-09", "to_month": None}}
    assert entry.after == {"status": "suspended", "effective_month": "2025-03", "enrolment_period": {
        "school_code": "2152019901", "from_month": "2023-09", "to_month": "2025-02"}}


# Coming back: 复学 and re-entry after dropout ------------------------------------------------------


def test_resuming_opens_a_new_period_at_the_same_school(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    instance_id = intake_instance(session, student)
    change(session, student, S.suspended, "2025-03")
    change(session, student, S.active, "2025-09", reason="病愈复学", instance_id=instance_id)
    assert student.status == S.active
    assert periods(session, student) == [("2023-09", "2025-02"), ("2025-09", None)]
    new = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id,
                                                        EnrolmentPeriod.to_month.is_(None))).one()
    assert new.school_id == student.school_id and new.instance_id == instance_id
    entry = entries(session, student, "student.status_change")[-1]
    assert entry.before == {"status": "suspended"}
    assert entry.after == {"status": "active", "effective_month": "2025-09", "enrolment_period": {
        "school_code": "2152019901", "from_month": "2025-09", "to_month": None}}
    assert [p["from_month"] for p in students.to_read(student, actor=user(session, "registrar1"))
            ["enrolment_periods"]] == ["2023-09", "2025-09"]


def test_resuming_in_the_month_of_the_suspension_pays_no_month_twice(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    change(session, student, S.suspended, "2025-03")
    change(session, student, S.active, "2025-03")
    assert periods(session, student) == [("2023-09", "2025-02"), ("2025-03", None)]


def test_resuming_within_months_already_counted_is_refused(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    change(session, student, S.suspended, "2025-03")
    with pytest.raises(RuleViolation, match="2025-02") as err:
        change(session, student, S.active, "2025-02")
    assert [d["field"] for d in err.value.details] == ["effective_month"]
    assert student.status == S.suspended and periods(session, student) == [("2023-09", "2025-02")]


def test_a_dropout_may_come_back_as_a_re_entry(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    change(session, student, S.dropped_out, "2024-11")
    change(session, student, S.active, "2025-03", reason="劝返复学")
    assert student.status == S.active
    assert periods(session, student) == [("2023-09", "2024-10"), ("2025-03", None)]


def test_suspended_may_drop_out_or_die_without_touching_the_months(session: Session) -> None:
    for to_status in (S.dropped_out, S.deceased):
        student = admit(session, now=CONFIRMED, seq=300 + len(to_status))
        change(session, student, S.suspended, "2025-03")
        change(session, student, to_status, "2025-06")
        assert student.status == to_status
        assert periods(session, student) == [("2023-09", "2025-02")]


def test_resuming_is_refused_while_another_live_record_holds_the_id(session: Session) -> None:
    first = admit(session, now=CONFIRMED, seq=211)
    change(session, first, S.dropped_out, "2024-11")
    # The dropout's ID is free again: the child was entered anew at another intake.
    second = admit(session, now=CONFIRMED, seq=211)
    assert second.status == S.active
    with pytest.raises(Conflict, match="一人一号"):
        change(session, first, S.active, "2025-03")
    assert first.status == S.dropped_out


def test_a_sibling_under_the_same_guardian_id_does_not_block_a_resumption(session: Session) -> None:
    guardian_id = make_id_number(birth=date(1985, 6, 1), seq=517)
    older = admit(session, now=CONFIRMED, seq=221, id_number=guardian_id, student_number_aux="1")
    younger = admit(session, now=CONFIRMED, seq=223, birth=date(2017, 9, 2), id_number=guardian_id,
                    student_number_aux="2")
    assert (older.status, younger.status) == (S.active, S.active)
    change(session, older, S.suspended, "2025-03")
    change(session, older, S.active, "2025-09")
    assert older.status == S.active


# Refusals ---------------------------------------------------------------------------------------


def student_in(session: Session, status: S, seq: int) -> Student:
    """A student brought to `status` the way the processes do it."""
    if status == S.pending:
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"),
                                              process_id="student_intake", data={"student": student_data(seq=seq)})
        student = session.get(Student, instance.subject_id)
        assert student is not None
        return student
    student = admit(session, now=CONFIRMED, seq=seq)
    if status == S.voided:
        return students.void_active(session, actor=user(session, "reviewer"), student_id=student.id, reason="误录")
    if status == S.active:
        return student
    if status != S.suspended and status in TRANSITIONS[S.active]:
        return change(session, student, status, "2025-03")
    change(session, student, S.suspended, "2025-03")
    return student


@pytest.mark.parametrize("from_status", list(S))
def test_every_transition_outside_the_table_is_refused_naming_both_statuses(session: Session, from_status: S) -> None:
    student = student_in(session, from_status, seq=401 + 2 * list(S).index(from_status))
    assert student.status == from_status
    before = periods(session, student)
    refused = [t for t in S if t not in TRANSITIONS.get(from_status, frozenset())]
    assert refused, from_status
    for to_status in refused:
        with pytest.raises(InvalidTransition) as err:
            change(session, student, to_status, "2026-01")
        assert STATUS_LABELS[from_status] in err.value.message and STATUS_LABELS[to_status] in err.value.message
        assert err.value.details[0]["field"] == "to_status"
        assert err.value.details[0]["message"].startswith("变更后状态：")
    assert student.status == from_status and periods(session, student) == before


def test_the_transition_table_is_the_documented_one() -> None:
    assert TRANSITIONS == {
        S.active: {S.suspended, S.dropped_out, S.graduated, S.deceased, S.transferred_out},
        S.suspended: {S.active, S.dropped_out, S.deceased},
        S.dropped_out: {S.active},
    }


def test_voiding_is_not_a_status_change(session: Session) -> None:
    student = admit(session, now=CONFIRMED)
    with pytest.raises(InvalidTransition, match="作废"):
        change(session, student, S.voided, "2025-03")


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"reason": ""}, ["reason"]),
        ({"reason": "  \u3000 "}, ["reason"]),
        ({"reason": None}, ["reason"]),
        ({"reason": "长" * 501}, ["reason"]),
        ({"month": "2025-13"}, ["effective_month"]),
        ({"month": "2025-3"}, ["effective_month"]),
        ({"month": "202503"}, ["effective_month"]),
        ({"month": "２０２５-０３"}, ["effective_month"]),
        ({"month": None}, ["effective_month"]),
        ({"to_status": "expelled"}, ["to_status"]),
        ({"to_status": "休学", "month": "2025/03", "reason": ""}, ["to_status", "effective_month", "reason"]),
    ],
)
def test_bad_input_names_each_field_in_chinese_and_changes_nothing(session: Session, kwargs: dict[str, Any],
                                                                    fields: list[str]) -> None:
    student = admit(session, now=CONFIRMED)
    with pytest.raises(RuleViolation) as err:
        change(session, student, kwargs.pop("to_status", S.suspended), kwargs.pop("month", "2025-03"), **kwargs)
    assert [d["field"] for d in err.value.details] == fields
    labels = {"reason": "变更原因：", "effective_month": "变更年月：", "to_status": "变更后状态："}
    assert all(d["message"].startswith(labels[d["field"]]) for d in err.value.details)
    assert student.status == S.active and periods(session, student) == [("2023-09", None)]
    assert entries(session, student, "student.status_change") == []


def test_an_unknown_student_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        change_status(session, student_id=2_000_000_000, to_status="suspended", effective_month="2025-03",
                      reason="x", actor=None)


# 作废: a confirmed record entered by mistake ------------------------------------------------------


def test_the_county_reviewer_voids_an_active_record_and_it_covers_no_month(session: Session) -> None:
    student = admit(session, now=CONFIRMED, seq=611)
    change(session, student, S.suspended, "2024-03")
    change(session, student, S.active, "2024-09")
    voided = students.void_active(session, actor=user(session, "reviewer"), student_id=student.id,
                                  reason="  与另一条记录为同一人，重复录入 ")
    assert voided.status == S.voided and voided.void_reason == "与另一条记录为同一人，重复录入"
    assert periods(session, student) == [("2023-09", "2023-08"), ("2024-09", "2024-08")]
    for period in session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)):
        assert not any(period.covers(f"{y}-{m:02d}") for y in range(2022, 2027) for m in range(1, 13))
    entry = entries(session, student, "student.void")[-1]
    assert entry.reason == "与另一条记录为同一人，重复录入" and entry.actor is not None
    assert entry.before == {"status": "active", "enrolment_periods": [
        {"school_code": "2152019901", "from_month": "2023-09", "to_month": "2024-02"},
        {"school_code": "2152019901", "from_month": "2024-09", "to_month": None}]}
    assert entry.after == {"status": "voided", "enrolment_periods": [
        {"school_code": "2152019901", "from_month": "2023-09", "to_month": "2023-08"},
        {"school_code": "2152019901", "from_month": "2024-09", "to_month": "2024-08"}]}


def test_the_county_admin_may_void_too_and_the_id_is_free_again(session: Session) -> None:
    student = admit(session, now=CONFIRMED, seq=613)
    students.void_active(session, actor=user(session, "admin"), student_id=student.id, reason="查无此人")
    again = admit(session, now=CONFIRMED, seq=613)
    assert again.status == S.active and again.id_number == student.id_number


@pytest.mark.parametrize("username", ["registrar1", "principal1", "township1", "aidcenter", "auditor", "processadmin"])
def test_nobody_else_may_void(session: Session, username: str) -> None:
    student = admit(session, now=CONFIRMED, seq=615)
    with pytest.raises(PermissionDenied):
        students.void_active(session, actor=user(session, username), student_id=student.id, reason="误录")
    assert student.status == S.active and entries(session, student, "student.void") == []


def test_a_registrar_of_another_school_does_not_see_the_record(session: Session) -> None:
    student = admit(session, now=CONFIRMED, seq=617)
    with pytest.raises(NotFound):
        students.void_active(session, actor=user(session, "registrar2"), student_id=student.id, reason="误录")


@pytest.mark.parametrize("reason", ["", "   ", None, "长" * 501])
def test_voiding_needs_a_reason(session: Session, reason: Any) -> None:
    student = admit(session, now=CONFIRMED, seq=619)
    with pytest.raises(RuleViolation, match="作废原因") as err:
        students.void_active(session, actor=user(session, "reviewer"), student_id=student.id, reason=reason)
    assert [d["field"] for d in err.value.details] == ["reason"]
    assert student.status == S.active and periods(session, student) == [("2023-09", None)]


@pytest.mark.parametrize("status", [S.pending, S.suspended, S.graduated, S.voided])
def test_only_active_records_are_voided_here(session: Session, status: S) -> None:
    student = student_in(session, status, seq=621 + 2 * list(S).index(status))
    with pytest.raises(InvalidTransition):
        students.void_active(session, actor=user(session, "reviewer"), student_id=student.id, reason="误录")
    assert student.status == status
