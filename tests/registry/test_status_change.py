"""学籍异动 of one student (休学, 复学, 辍学, 死亡, 就读方式/一补变更) through status_change on a real database:
who may ask, what is refused, and the subsidy months after each approved change (Art. 14, 15)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import students, subsidy, workflows
from registry.audit import AuditEntry
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.org_units import find_org_unit
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, TaskStatus
from tests.factories import SCHOOL_1, admit, fire_overdue_flag, user

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
    assert (review.task_id, review.role, review.org_unit.code) == ("review_change", "school_principal", SCHOOL_1)
    assert "自 2026-03 起不再享受营养改善计划补助" in workflows.task_view(session, review)[1]
    complete(session, instance, "principal1", {"decision": "approve"})
    session.refresh(student)
    assert student.status == S.active  # nothing changes before the county approves
    approve = open_task(session, instance)
    assert (approve.task_id, approve.role, approve.org_unit.code) == ("approve_change", "county_reviewer", "520199")
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


def test_an_overdue_county_approval_is_flagged_and_stays_open_to_approve(session: Session) -> None:
    student = enrolled(session, 227)
    instance = ask(session, student, S.suspended, "2026-03")
    complete(session, instance, "principal1", {"decision": "approve"})
    approve = open_task(session, instance)
    assert approve.task_id == "approve_change"
    due = NOW + timedelta(days=5)  # "P5D" from when the step opened
    fire_overdue_flag(session, instance, approve, due=due)
    session.refresh(student)
    assert student.status == S.active  # the timer decides nothing
    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(days=1))  # firing again: nothing
    assert open_task(session, instance).id == approve.id
    complete(session, instance, "reviewer", {"decision": "approve"})
    session.refresh(student)
    assert student.status == S.suspended


# 就读方式/一补变更 -----------------------------------------------------------------------------------

BOARDING_REASON = "家离学校远，改为住校"


def ask_boarding(session: Session, student: Student, *, username: str = "registrar1", **changes: Any) -> ProcessInstance:
    data = {"kind": "boarding", "student_id": student.id, "boarding_mode": "2", "boarding_allowance": True,
            "effective_month": "2026-03", "reason": BOARDING_REASON, **changes}
    instance, _ = workflows.start_process(session, actor=user(session, username), process_id="status_change", now=NOW,
                                          data={k: v for k, v in data.items() if v is not None})
    return instance


def boarding_of(session: Session, student: Student) -> tuple[str, bool, list[tuple[str, str | None, str, bool]]]:
    """The record's boarding mode and 一补, and each period's months with the values they count with."""
    session.refresh(student)
    rows = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
                           .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
                           .execution_options(populate_existing=True))
    return (student.boarding_mode, student.boarding_allowance,
            [(p.from_month, p.to_month, p.boarding_mode, p.boarding_allowance) for p in rows])


DAY_PUPIL = ("1", False, [("2023-09", None, "1", False)])


def test_an_approved_boarding_change_counts_from_its_month_and_keeps_the_months_before(session: Session) -> None:
    student = enrolled(session, 229)
    assert boarding_of(session, student) == DAY_PUPIL
    instance = ask_boarding(session, student)
    review = open_task(session, instance)
    assert (review.task_id, review.role, review.org_unit.code) == ("review_change", "school_principal", SCHOOL_1)
    text = workflows.task_view(session, review)[1]
    assert "就读方式/一补变更申请：就读方式 走读 → 住校，不享受一补 → 享受一补" in text
    assert "自 2026-03 起按变更后的就读方式和一补计算，此前各月不变" in text
    complete(session, instance, "principal1", {"decision": "approve"})
    assert boarding_of(session, student) == DAY_PUPIL  # nothing changes before the county approves
    approve = open_task(session, instance)
    assert (approve.task_id, approve.role, approve.org_unit.code) == ("approve_change", "county_reviewer", "520199")
    complete(session, instance, "reviewer", {"decision": "approve"})
    session.refresh(instance)
    assert instance.status == InstanceStatus.completed
    assert boarding_of(session, student) == ("2", True, [("2023-09", "2026-02", "1", False), ("2026-03", None, "2", True)])
    assert student.status == S.active
    new = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id,
                                                        EnrolmentPeriod.to_month.is_(None))).one()
    assert new.instance_id == instance.id
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.status_change",
                                                     AuditEntry.object_id == str(student.id))).one()
    assert (entry.instance_id, entry.reason, entry.actor.username) == (instance.id, BOARDING_REASON, "reviewer")  # type: ignore[union-attr]
    assert (entry.before["boarding_mode"], entry.before["boarding_allowance"]) == ("1", False)
    assert {k: entry.after[k] for k in ("boarding_mode", "boarding_allowance", "effective_month")} == {
        "boarding_mode": "2", "boarding_allowance": True, "effective_month": "2026-03"}

    def refs(side: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(p["school_code"], p["from_month"], p["to_month"], p["grade"], p["boarding_mode"], p["boarding_allowance"])
                for p in side["enrolment_periods"]]

    assert refs(entry.before) == [(SCHOOL_1, "2023-09", None, 3, "1", False)]
    assert refs(entry.after) == [(SCHOOL_1, "2023-09", "2026-02", 3, "1", False), (SCHOOL_1, "2026-03", None, 3, "2", True)]


def test_the_subsidy_before_the_change_month_is_unchanged_and_from_it_counts_the_new_values(session: Session) -> None:
    student = enrolled(session, 231)
    today = date(2026, 6, 30)
    before = subsidy.explain(session, student, today=today).lines
    assert all(line.allowance_amount == 0 for line in before)
    instance = ask_boarding(session, student)
    complete(session, instance, "principal1", {"decision": "approve"})
    complete(session, instance, "reviewer", {"decision": "approve"})
    session.refresh(student)
    after = subsidy.explain(session, student, today=today).lines
    assert [line.month for line in after] == [line.month for line in before]
    assert [line for line in after if line.month < "2026-03"] == [line for line in before if line.month < "2026-03"]
    changed = [line for line in after if line.month >= "2026-03"]
    assert [line.month for line in changed] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    for old, new in zip([line for line in before if line.month >= "2026-03"], changed, strict=True):
        assert new.meal_amount == old.meal_amount  # the meal subsidy does not depend on boarding
        assert new.allowance_rate == Decimal("4.00") and new.allowance_amount > 0  # 一补, primary boarder
        assert "一补（小学寄宿生）" in new.rule


def test_a_day_pupil_gets_yibu_only_where_the_county_pays_day_pupils(session: Session) -> None:
    student = enrolled(session, 233)
    before = instances(session)
    with pytest.raises(RuleViolation, match="一补只补助寄宿生，本县自 2026-03 起未对走读生发放一补") as err:
        ask_boarding(session, student, boarding_mode=None)  # only the 一补, the boarding mode stays 走读
    assert [d["field"] for d in err.value.details] == ["boarding_allowance"]
    assert instances(session) == before
    county = find_org_unit(session, code="520199")
    assert county is not None
    subsidy.set_county_rate(session, actor=user(session, "admin"), county=county, kind="allowance_day_primary",
                            effective_month="2025-09", per_day="2.00", days_per_year=250, note="走读生一补减半")
    instance = ask_boarding(session, student, boarding_mode=None)
    assert instance.status == InstanceStatus.running
    assert "不享受一补 → 享受一补" in workflows.task_view(session, open_task(session, instance))[1]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"boarding_mode": "1", "boarding_allowance": False}, "boarding_mode", "就读方式和享受一补都与现在相同（走读、不享受一补）"),
    ({"boarding_mode": "3"}, "boarding_mode", "就读方式：“3”不是有效的代码"),
    ({"boarding_allowance": "是"}, "boarding_allowance", "享受一补：应为“是”或“否”"),
    ({"effective_month": "2023-08"}, "effective_month", "变更年月：2023-08 早于本次在籍起始年月 2023-09"),
    ({"effective_month": "2026-13"}, "effective_month", "变更年月：“2026-13”不是有效年月"),
    ({"reason": "  "}, "reason", "变更原因：必填"),
    ({"grade": 4}, "grade", "未知字段：grade"),
    ({"boarding_mode": "1", "boarding_allowance": True}, "boarding_allowance", "一补只补助寄宿生"),
])
def test_a_bad_boarding_change_is_refused_naming_the_field_and_nothing_is_written(
        session: Session, changes: dict[str, Any], field: str, message: str) -> None:
    student = enrolled(session, 235)
    before = instances(session)
    with pytest.raises(RuleViolation, match=message) as err:
        ask_boarding(session, student, **changes)
    assert [d["field"] for d in err.value.details] == [field]
    assert instances(session) == before and boarding_of(session, student) == DAY_PUPIL


def test_only_an_active_student_changes_boarding(session: Session) -> None:
    student = enrolled(session, 237)
    approved(session, student, S.suspended, "2025-03", "因病休学")
    before = instances(session)
    with pytest.raises(InvalidTransition, match="该生现为“休学”，只有在籍学生可以变更就读方式或享受一补") as err:
        ask_boarding(session, student)
    assert [d["field"] for d in err.value.details] == ["student_id"]
    assert instances(session) == before
    assert (student.boarding_mode, student.boarding_allowance) == ("1", False)


@pytest.mark.parametrize(("username", "error"), [("principal1", PermissionDenied), ("reviewer", PermissionDenied),
                                                 ("registrar2", NotFound)])
def test_only_the_registrar_of_the_school_asks_for_a_boarding_change(session: Session, username: str,
                                                                      error: type[Exception]) -> None:
    student = enrolled(session, 239)
    before = instances(session)
    with pytest.raises(error):
        ask_boarding(session, student, username=username)
    assert instances(session) == before and boarding_of(session, student) == DAY_PUPIL


def test_only_the_principal_reviews_and_only_the_county_approves_a_boarding_change(session: Session) -> None:
    student = enrolled(session, 241)
    instance = ask_boarding(session, student)
    review = open_task(session, instance)
    for username in ("registrar1", "reviewer", "principal2"):
        with pytest.raises(NotFound, match=f"找不到任务 {review.id}"):
            workflows.complete_task(session, actor=user(session, username), task_id=review.id,
                                    data={"decision": "approve"}, now=NOW)
    assert open_task(session, instance).id == review.id
    complete(session, instance, "principal1", {"decision": "approve"})
    approve = open_task(session, instance)
    for username in ("principal1", "registrar1", "aidcenter"):
        with pytest.raises(NotFound, match=f"找不到任务 {approve.id}"):
            workflows.complete_task(session, actor=user(session, username), task_id=approve.id,
                                    data={"decision": "approve"}, now=NOW)
    assert open_task(session, instance).id == approve.id and boarding_of(session, student) == DAY_PUPIL


@pytest.mark.parametrize("returning", ["principal1", "reviewer"])
def test_a_returned_boarding_change_is_revised_checked_again_and_the_revision_is_what_changes(
        session: Session, returning: str) -> None:
    student = enrolled(session, 243 if returning == "principal1" else 245)
    instance = ask_boarding(session, student)
    if returning == "reviewer":
        complete(session, instance, "principal1", {"decision": "approve"})
    complete(session, instance, returning, {"decision": "return", "comment": "一补须先做家庭经济困难认定"})
    revise = open_task(session, instance)
    assert (revise.task_id, revise.role, revise.org_unit.code) == ("revise_boarding", "school_registrar", SCHOOL_1)
    assert "退回意见：一补须先做家庭经济困难认定" in workflows.task_view(session, revise)[1]
    registrar = user(session, "registrar1")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(RuleViolation, match="没有要变更的内容") as err:
        workflows.complete_task(session, actor=registrar, task_id=revise.id, now=NOW,
                                data={"boarding_mode": "1", "boarding_allowance": False, "effective_month": "2026-04",
                                      "reason": "不变了"})
    assert [d["field"] for d in err.value.details] == ["boarding_mode"]
    savepoint.rollback()
    assert open_task(session, instance).id == revise.id
    workflows.complete_task(session, actor=registrar, task_id=revise.id, now=NOW,
                            data={"boarding_mode": "2", "boarding_allowance": False, "effective_month": "2026-04",
                                  "reason": "改为住校，一补待认定后再申请"})
    review = open_task(session, instance)
    assert review.task_id == "review_change"
    assert "就读方式 走读 → 住校，变更年月 2026-04" in workflows.task_view(session, review)[1]
    complete(session, instance, "principal1", {"decision": "approve"})
    complete(session, instance, "reviewer", {"decision": "approve"})
    assert boarding_of(session, student) == ("2", False, [("2023-09", "2026-03", "1", False),
                                                          ("2026-04", None, "2", False)])


@pytest.mark.parametrize("rejecting", ["principal1", "reviewer"])
def test_a_rejected_boarding_change_changes_nothing(session: Session, rejecting: str) -> None:
    student = enrolled(session, 247 if rejecting == "principal1" else 249)
    instance = ask_boarding(session, student)
    if rejecting == "reviewer":
        complete(session, instance, "principal1", {"decision": "approve"})
    task = complete(session, instance, rejecting, {"decision": "reject", "comment": "未提供住校申请"})
    session.refresh(instance)
    assert instance.status == InstanceStatus.completed and task.comment == "未提供住校申请"
    assert boarding_of(session, student) == DAY_PUPIL
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "student.status_change", AuditEntry.object_id == str(student.id))) == 0


def test_a_boarding_change_approved_after_the_record_moved_on_is_refused_and_nothing_half_done(session: Session) -> None:
    student = enrolled(session, 251)
    instance = ask_boarding(session, student)
    complete(session, instance, "principal1", {"decision": "approve"})
    students.void_active(session, actor=user(session, "reviewer"), student_id=student.id, reason="重复录入")
    savepoint = session.begin_nested()  # what the request's rollback would undo
    with pytest.raises(InvalidTransition, match="只有在籍学生可以变更就读方式或享受一补"):
        complete(session, instance, "reviewer", {"decision": "approve"})
    savepoint.rollback()
    assert open_task(session, instance).task_id == "approve_change"
    session.refresh(student)
    assert (student.boarding_mode, student.boarding_allowance) == ("1", False)


def test_a_boarding_change_under_way_holds_off_other_requests(session: Session) -> None:
    student = enrolled(session, 253)
    first = ask_boarding(session, student)
    with pytest.raises(Conflict, match=f"学籍异动”（流程编号 {first.id}）"):
        ask(session, student, S.suspended, "2026-03")
    with pytest.raises(Conflict, match=f"学籍异动”（流程编号 {first.id}）"):
        ask_boarding(session, student, boarding_allowance=False)

