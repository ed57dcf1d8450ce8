"""The inbox on a real database: tabs, counts, filters, reassignment, batch decisions, views, drafts, withdrawal."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import drafts, inbox, workflows
from registry.errors import InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.inbox import InboxQuery, Tab
from registry.students import Student, StudentStatus
from registry.users import Role, create_user, grant_role
from registry.workflows import HumanTask, InstanceStatus, TaskStatus
from tests.factories import SCHOOL_1, SCHOOL_2, student_data, user

ZONE = ZoneInfo("Asia/Shanghai")


def start_intake(session: Session, seq: int, *, username: str = "registrar1", school: str = SCHOOL_1,
                 now: datetime | None = None) -> int:
    instance, _ = workflows.start_process(
        session, actor=user(session, username), process_id="student_intake", now=now,
        data={"student": student_data(seq=seq, birth=date(2016, 2, 9), school_code=school, name=f"收件{seq}")})
    return instance.id


def open_task(session: Session, instance_id: int) -> HumanTask:
    [task] = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.status == TaskStatus.open)).all()
    return task


def at_confirmation(session: Session, seq: int, **kwargs: object) -> HumanTask:
    instance_id = start_intake(session, seq, **kwargs)  # type: ignore[arg-type]
    principal = "principal1" if kwargs.get("school", SCHOOL_1) == SCHOOL_1 else "principal2"
    workflows.complete_task(session, actor=user(session, principal), task_id=open_task(session, instance_id).id,
                            data={"decision": "approve"}, now=kwargs.get("now"))  # type: ignore[arg-type]
    return open_task(session, instance_id)


def ids(session: Session, username: str, query: InboxQuery, **kwargs: object) -> list[int]:
    rows, total = inbox.list_inbox(session, actor=user(session, username), query=query, **kwargs)  # type: ignore[arg-type]
    assert total == len(rows)
    return [t.id for t in rows]


def test_a_task_moves_from_to_claim_to_mine_to_done(session: Session) -> None:
    review = open_task(session, start_intake(session, 401))
    principal = user(session, "principal1")
    assert review.id in ids(session, "principal1", InboxQuery(tab=Tab.to_claim))
    assert review.id not in ids(session, "principal1", InboxQuery(tab=Tab.mine))
    assert review.id not in ids(session, "principal2", InboxQuery(tab=Tab.to_claim))  # another school

    workflows.claim_task(session, actor=principal, task_id=review.id)
    assert review.id in ids(session, "principal1", InboxQuery(tab=Tab.mine))
    assert review.id not in ids(session, "principal1", InboxQuery(tab=Tab.to_claim))
    # The county watches the school's step without holding its role.
    assert review.id in ids(session, "reviewer", InboxQuery(tab=Tab.scope))
    assert review.id not in ids(session, "reviewer", InboxQuery(tab=Tab.to_claim))

    workflows.complete_task(session, actor=principal, task_id=review.id, data={"decision": "approve"})
    assert review.id in ids(session, "principal1", InboxQuery(tab=Tab.done))
    assert review.id not in ids(session, "principal1", InboxQuery(tab=Tab.mine))


def test_counts_per_tab_follow_the_filters(session: Session) -> None:
    reviewer = user(session, "reviewer")
    only_school_2 = InboxQuery(school_code=SCHOOL_2)
    before = inbox.tab_counts(session, actor=reviewer, query=InboxQuery())
    before_2 = inbox.tab_counts(session, actor=reviewer, query=only_school_2)
    at_confirmation(session, 403)
    at_confirmation(session, 405, username="registrar2", school=SCHOOL_2)
    after = inbox.tab_counts(session, actor=reviewer, query=InboxQuery())
    after_2 = inbox.tab_counts(session, actor=reviewer, query=only_school_2)
    assert after[Tab.to_claim] == before[Tab.to_claim] + 2
    assert after_2[Tab.to_claim] == before_2[Tab.to_claim] + 1
    assert after[Tab.scope] == before[Tab.scope] + 2
    assert set(after) == {Tab.mine, Tab.to_claim, Tab.done, Tab.scope}
    assert set(inbox.tab_counts(session, actor=user(session, "registrar1"), query=InboxQuery())) == \
        {Tab.mine, Tab.to_claim, Tab.done}


def test_filters_by_process_school_overdue_and_this_week(session: Session) -> None:
    monday = datetime(2026, 9, 7, 2, tzinfo=UTC)  # 10:00 in 贵州
    fresh = at_confirmation(session, 407, now=monday)  # confirm_intake is due P5D later: Saturday the 12th
    other = at_confirmation(session, 409, username="registrar2", school=SCHOOL_2, now=monday)
    late = at_confirmation(session, 411, now=monday - timedelta(days=10))
    query = InboxQuery(tab=Tab.to_claim, process_id="student_intake")

    def seen(**filters: object) -> set[int]:
        found = set(ids(session, "reviewer", InboxQuery(**{**query.__dict__, **filters}), now=monday, zone=ZONE))
        return found & {fresh.id, other.id, late.id}

    assert seen() == {fresh.id, other.id, late.id}
    assert seen(school_code=SCHOOL_2) == {other.id}
    assert seen(overdue=True) == {late.id}
    assert seen(due_this_week=True) == {fresh.id, other.id, late.id}
    assert set(ids(session, "reviewer", InboxQuery(tab=Tab.to_claim, due_this_week=True),
                   now=monday - timedelta(days=7), zone=ZONE)) & {fresh.id, other.id} == set()
    assert seen(process_id="batch_intake") == set()
    by_created = ids(session, "reviewer", InboxQuery(tab=Tab.to_claim, sort="created"), now=monday, zone=ZONE)
    assert by_created.index(fresh.id) < by_created.index(late.id)
    by_due = ids(session, "reviewer", InboxQuery(tab=Tab.to_claim), now=monday, zone=ZONE)
    assert by_due.index(late.id) < by_due.index(fresh.id)


def test_query_round_trips_through_the_url_and_tolerates_junk() -> None:
    query = InboxQuery(tab=Tab.scope, process_id="student_intake", school_code=SCHOOL_1, overdue=True, sort="created")
    again = InboxQuery.from_params(dict(p.split("=") for p in query.as_query_string().split("&")))
    assert again == query
    assert InboxQuery.from_params({"tab": "nope", "sort": "x; drop", "overdue": "maybe"}) == InboxQuery()


def test_supervisors_reassign_to_someone_holding_the_role(session: Session) -> None:
    confirm = at_confirmation(session, 413)
    second = create_user(session, username="inbox_reviewer", display_name="第二审核员", password="second-pass-2026")
    grant_role(session, user=second, role=Role.county_reviewer, org_unit_code="520199")

    with pytest.raises(NotFound):  # a registrar does not even see the county's task
        inbox.reassign(session, actor=user(session, "registrar1"), task_id=confirm.id, to_username="inbox_reviewer")
    with pytest.raises(RuleViolation, match="不是"):
        inbox.reassign(session, actor=user(session, "reviewer"), task_id=confirm.id, to_username="registrar1")
    with pytest.raises(RuleViolation, match="找不到用户"):
        inbox.reassign(session, actor=user(session, "reviewer"), task_id=confirm.id, to_username="nobody")

    inbox.reassign(session, actor=user(session, "reviewer"), task_id=confirm.id, to_username="inbox_reviewer",
                   reason="请假")
    assert confirm.id in ids(session, "inbox_reviewer", InboxQuery(tab=Tab.mine))
    with pytest.raises(Exception, match="认领"):
        workflows.complete_task(session, actor=user(session, "reviewer"), task_id=confirm.id,
                                data={"decision": "approve"})


def test_principal_reassigns_only_within_the_school(session: Session) -> None:
    review = open_task(session, start_intake(session, 415, username="registrar2", school=SCHOOL_2))
    with pytest.raises(NotFound):
        inbox.reassign(session, actor=user(session, "principal1"), task_id=review.id, to_username="principal2")
    inbox.reassign(session, actor=user(session, "principal2"), task_id=review.id, to_username="principal2")
    assert session.get(HumanTask, review.id).claimed_by_id == user(session, "principal2").id


def test_batch_confirmation_of_many_intakes(session: Session) -> None:
    tasks = [at_confirmation(session, seq) for seq in (417, 419, 421)]
    ok, results = inbox.complete_many(session, actor=user(session, "reviewer"), task_ids=[t.id for t in tasks],
                                      data={"decision": "approve"})
    assert ok and [r.ok for r in results] == [True, True, True]
    for task in tasks:
        student = session.get(Student, task.instance.subject_id)
        session.refresh(student)
        assert student.status == StudentStatus.active


def test_batch_with_one_failure_does_nothing_and_says_which(session: Session) -> None:
    first = at_confirmation(session, 423)
    # The same ID at another school: the county lets it through the duplicate check, then the principal.
    twin_instance = start_intake(session, 423, username="registrar2", school=SCHOOL_2)
    for username in ("reviewer", "principal2"):
        workflows.complete_task(session, actor=user(session, username), task_id=open_task(session, twin_instance).id,
                                data={"decision": "approve"})
    twin = open_task(session, twin_instance)
    third = at_confirmation(session, 425)
    ok, results = inbox.complete_many(session, actor=user(session, "reviewer"),
                                      task_ids=[first.id, twin.id, third.id], data={"decision": "approve"})
    assert not ok
    assert [r.ok for r in results] == [True, False, True]
    assert "在籍" in results[1].message and "未提交" in results[0].message
    for task in (first, twin, third):
        assert session.get(HumanTask, task.id).status == TaskStatus.open
        student = session.get(Student, task.instance.subject_id)
        session.refresh(student)
        assert student.status == StudentStatus.pending


def test_batch_refuses_mixed_kinds_and_needs_a_comment_to_return(session: Session) -> None:
    confirm = at_confirmation(session, 427)
    review = open_task(session, start_intake(session, 429))
    with pytest.raises(RuleViolation, match="同一流程"):
        inbox.complete_many(session, actor=user(session, "reviewer"), task_ids=[confirm.id, review.id],
                            data={"decision": "approve"})
    ok, results = inbox.complete_many(session, actor=user(session, "reviewer"), task_ids=[confirm.id],
                                      data={"decision": "return"})
    assert not ok and "审核意见" in results[0].message


def test_saved_views_are_per_user_and_open_for_anyone(session: Session) -> None:
    query = InboxQuery(tab=Tab.to_claim, process_id="student_intake", overdue=True)
    view = inbox.save_view(session, actor=user(session, "reviewer"), name="逾期录入", query=query)
    assert [v.name for v in inbox.views_of(session, actor=user(session, "reviewer"))] == ["逾期录入"]
    assert inbox.views_of(session, actor=user(session, "principal1")) == []
    assert InboxQuery.from_params(inbox.view_params(inbox.get_view(session, view.id))) == query
    with pytest.raises(PermissionDenied):
        inbox.delete_view(session, actor=user(session, "principal1"), view_id=view.id)
    with pytest.raises(RuleViolation):
        inbox.save_view(session, actor=user(session, "reviewer"), name=" ", query=query)
    inbox.delete_view(session, actor=user(session, "reviewer"), view_id=view.id)
    with pytest.raises(NotFound):
        inbox.get_view(session, view.id)


def test_drafts_come_back_and_go_when_the_task_is_done(session: Session) -> None:
    review = open_task(session, start_intake(session, 431))
    principal = user(session, "principal1")
    drafts.save(session, user_id=principal.id, task_id=review.id,
                fields={"decision": "return", "comment": "出生日期请核", "csrf_token": "x"})
    drafts.save(session, user_id=principal.id, task_id=review.id, fields={"decision": "return", "comment": "出生日期请核对"})
    draft = drafts.of(session, user_id=principal.id, task_id=review.id)
    assert draft is not None and draft.data == {"decision": "return", "comment": "出生日期请核对"}
    workflows.complete_task(session, actor=principal, task_id=review.id,
                            data={"decision": "return", "comment": "出生日期请核对"})
    session.expire_all()
    assert drafts.of(session, user_id=principal.id, task_id=review.id) is None


def test_the_initiator_withdraws_before_the_next_step_acts(session: Session) -> None:
    instance_id = start_intake(session, 433)
    review = open_task(session, instance_id)
    with pytest.raises(PermissionDenied):
        workflows.withdraw(session, actor=user(session, "principal1"), instance_id=instance_id, reason="x")
    with pytest.raises(RuleViolation):
        workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance_id, reason=" ")
    instance = workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance_id,
                                  reason="证件号录错")
    assert instance.status == InstanceStatus.withdrawn
    session.flush()
    session.expire_all()
    assert session.get(HumanTask, review.id).status == TaskStatus.cancelled
    student = session.get(Student, instance.subject_id)
    session.refresh(student)
    assert student.status == StudentStatus.voided and "证件号录错" in student.void_reason
    with pytest.raises(InvalidTransition):
        workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance_id, reason="again")


def test_no_withdrawal_once_the_next_step_has_claimed_or_acted(session: Session) -> None:
    instance_id = start_intake(session, 435)
    workflows.claim_task(session, actor=user(session, "principal1"), task_id=open_task(session, instance_id).id)
    with pytest.raises(InvalidTransition, match="已开始办理"):
        workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance_id, reason="录错")
