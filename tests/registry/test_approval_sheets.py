"""The approval sheet of an instance, and when 撤回 is offered: on a real database."""

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import workflows
from registry.approval_sheets import print_sheet
from registry.audit import AuditEntry
from registry.errors import InvalidTransition, NotFound
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.factories import student_data, user

BIRTH = date(2014, 3, 9)  # no other test's students


def start(session: Session, seq: int) -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(seq=seq, birth=BIRTH, name=f"审批{seq}")})
    return instance


def act(session: Session, instance: ProcessInstance, username: str, **data: str) -> None:
    task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()
    workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=data)


def test_withdraw_is_offered_to_the_initiator_until_the_next_step_claims_it(session: Session) -> None:
    instance = start(session, 701)
    registrar, principal = user(session, "registrar1"), user(session, "principal1")
    assert workflows.may_withdraw(session, actor=registrar, instance=instance)
    assert not workflows.may_withdraw(session, actor=principal, instance=instance)
    assert not workflows.may_withdraw(session, actor=user(session, "registrar2"), instance=instance)
    task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)).one()
    workflows.claim_task(session, actor=principal, task_id=task.id)
    assert not workflows.may_withdraw(session, actor=registrar, instance=instance)
    workflows.unclaim_task(session, actor=principal, task_id=task.id)
    assert workflows.may_withdraw(session, actor=registrar, instance=instance)
    workflows.withdraw(session, actor=registrar, instance_id=instance.id, reason="录错")
    session.refresh(instance)
    assert not workflows.may_withdraw(session, actor=registrar, instance=instance)


def test_sheet_lists_each_step_and_records_the_print(session: Session) -> None:
    instance = start(session, 703)
    with pytest.raises(InvalidTransition, match="尚未办结"):
        print_sheet(session, actor=user(session, "registrar1"), instance_id=instance.id)
    act(session, instance, "principal1", decision="return", comment="班级填错")
    act(session, instance, "registrar1", student=student_data(seq=703, birth=BIRTH, name="审批703", class_name="3班"))
    act(session, instance, "principal1", decision="approve")
    act(session, instance, "reviewer", decision="approve", comment="确认")
    session.refresh(instance)

    sheet = print_sheet(session, actor=user(session, "township1"), instance_id=instance.id)
    assert [(s.title, s.actor, s.opinion) for s in sheet.steps] == [
        ("发起", "李学籍（城关小学）", "提交"), ("校长审核", "王校长（城关小学）", "退回修改：班级填错"),
        ("退回修改", "李学籍（城关小学）", "已提交"), ("校长审核", "王校长（城关小学）", "通过"),
        ("确认入库", "张审核（县营养办）", "通过：确认")]
    assert sheet.process_name == "学生信息录入审核" and sheet.county.name == "演示县"
    assert sheet.school is not None and sheet.school.code == "2152019901"
    subject = dict(sheet.subject)
    assert subject["姓名"] == "审批703" and "*" in subject["身份证件号"] and not sheet.full_id
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance.id,
                                                       AuditEntry.action == "instance.print")).all()
    assert entry.actor_id == user(session, "township1").id and entry.after["full_id"] is False

    assert "*" not in dict(print_sheet(session, actor=user(session, "reviewer"), instance_id=instance.id).subject)[
        "身份证件号"]
    with pytest.raises(NotFound):
        print_sheet(session, actor=user(session, "registrar2"), instance_id=instance.id)
