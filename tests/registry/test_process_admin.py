"""Versions, migration and operating instances on a real database."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from registry import process_admin, workflows
from registry.audit import AuditEntry
from registry.db import utcnow
from registry.errors import Conflict, InvalidTransition, PermissionDenied, RuleViolation
from registry.workflows import HumanTask, InstanceStatus, InstanceTimer, ProcessInstance, ProcessVersion, TaskStatus
from tests.factories import student_data, user

INTAKE = (Path(__file__).resolve().parents[2] / "processes" / "student_intake.bpmn").read_text(encoding="utf-8")
CONFIRM_DUE = ('<spiffworkflow:property name="due" value="P5D" />\n        </spiffworkflow:properties>\n'
               '        <spiffworkflow:instructionsForEndUser>请确认学生')
MARK_OVERDUE_START = '<bpmn:serviceTask id="mark_overdue" name="标记逾期">'


def intake_with(*replacements: tuple[str, str]) -> bytes:
    text = INTAKE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode()


def longer_confirm(days: int) -> bytes:
    return intake_with((CONFIRM_DUE, CONFIRM_DUE.replace('"P5D"', f'"P{days}D"')))


def failing_overdue() -> bytes:
    """mark_overdue as a script that divides by zero: the timer's path fails."""
    text = INTAKE
    start = text.index(MARK_OVERDUE_START)
    end = text.index("</bpmn:serviceTask>", start) + len("</bpmn:serviceTask>")
    return (text[:start] + '<bpmn:scriptTask id="mark_overdue" name="标记逾期">'
            '<bpmn:incoming>flow_overdue_mark</bpmn:incoming><bpmn:outgoing>flow_mark_end</bpmn:outgoing>'
            '<bpmn:script>overdue_marked = 1 / 0</bpmn:script></bpmn:scriptTask>' + text[end:]).encode()


def start(session: Session, seq: int = 123, now=None) -> ProcessInstance:  # type: ignore[no-untyped-def]
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(seq=seq)}, now=now)
    return instance


def open_task(session: Session, instance: ProcessInstance) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()


def approve(session: Session, instance: ProcessInstance, username: str, now=None) -> None:  # type: ignore[no-untyped-def]
    workflows.complete_task(session, actor=user(session, username), task_id=open_task(session, instance).id,
                            data={"decision": "approve"}, now=now)


def deploy(session: Session, bpmn: bytes, note: str = "测试修改"):  # type: ignore[no-untyped-def]
    return process_admin.deploy_version(session, actor=user(session, "processadmin"), bpmn=bpmn, note=note,
                                        process_id="student_intake")


def audit(session: Session, instance: ProcessInstance, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance.id,
                                                         AuditEntry.action == action)))


def test_deploy_makes_the_next_version_and_old_instances_stay(session: Session) -> None:
    old = start(session)
    started_on = old.version.version
    # The highest number deployed, retired or not (the browser tests retire what they deploy).
    before = session.scalar(select(func.max(ProcessVersion.version)).where(ProcessVersion.process_id == "student_intake"))
    version, created = deploy(session, longer_confirm(9))
    assert created and version.version == before + 1 and version.note == "测试修改"
    assert version.deployed_by_id == user(session, "processadmin").id
    assert deploy(session, longer_confirm(9)) == (version, False)
    new = start(session, seq=124)
    assert new.version.version == version.version
    session.refresh(old)
    assert old.version.version == started_on


def test_invalid_definition_changes_nothing(session: Session) -> None:
    before = workflows.latest_version(session, "student_intake").id
    with pytest.raises(RuleViolation) as err:
        deploy(session, intake_with(('name="county_reviewer"', 'name="nobody"')))
    assert any(d.get("element_id") for d in err.value.details)
    assert workflows.latest_version(session, "student_intake").id == before


def test_deploy_needs_a_note_and_the_process_admin(session: Session) -> None:
    with pytest.raises(RuleViolation):
        deploy(session, longer_confirm(8), note=" ")
    with pytest.raises(PermissionDenied):
        process_admin.deploy_version(session, actor=user(session, "admin"), bpmn=longer_confirm(8), note="x",
                                     process_id="student_intake")


def test_new_process_whose_id_is_taken_is_refused(session: Session) -> None:
    with pytest.raises(Conflict):
        process_admin.deploy_version(session, actor=user(session, "processadmin"), bpmn=longer_confirm(8),
                                     note="新流程")


def test_editing_may_not_change_the_process_id(session: Session) -> None:
    with pytest.raises(RuleViolation):
        process_admin.deploy_version(session, actor=user(session, "processadmin"), bpmn=longer_confirm(8),
                                     note="x", process_id="batch_intake")


def test_diff_between_versions(session: Session) -> None:
    # Against the newest version in use: the browser tests may have deployed, then retired, another one.
    in_use = workflows.latest_version(session, "student_intake").version
    version, _ = deploy(session, longer_confirm(7))
    changes = process_admin.version_diff(session, actor=user(session, "processadmin"), process_id="student_intake",
                                         old=in_use, new=version.version)
    assert [e.id for e in changes.changed] == ["confirm_intake"]


def test_dry_run_then_migrate_moves_the_movable_keeps_timers_and_audits(session: Session) -> None:
    at_review = start(session)
    at_confirm = start(session, seq=124)
    approve(session, at_confirm, "principal1")
    timer_before = session.get(InstanceTimer, at_confirm.id).due_at
    stricter_review = intake_with(('<spiffworkflow:property name="due" value="P3D" />\n        </spiffworkflow:properties>\n'
                                   '        <spiffworkflow:instructionsForEndUser>请审核学生',
                                   '<spiffworkflow:property name="due" value="P2D" />\n        </spiffworkflow:properties>\n'
                                   '        <spiffworkflow:instructionsForEndUser>请审核学生'))
    version, _ = deploy(session, stricter_review)
    admin = user(session, "processadmin")

    plan = {c.instance.id: c for c in process_admin.migration_plan(session, actor=admin, process_id="student_intake",
                                                                   to_version=version.version)}
    assert plan[at_review.id].movable
    assert not plan[at_confirm.id].movable
    assert plan[at_confirm.id].blockers[0].element_id == "review_intake"

    done = {c.instance.id: c for c in process_admin.migrate_instances(
        session, actor=admin, process_id="student_intake", to_version=version.version)}
    assert done[at_review.id].movable and not done[at_confirm.id].movable
    session.refresh(at_review)
    session.refresh(at_confirm)
    assert at_review.process_version_id == version.id
    assert at_confirm.process_version_id != version.id
    assert session.get(InstanceTimer, at_confirm.id).due_at == timer_before
    assert len(audit(session, at_review, "process.migrate")) == 1
    assert audit(session, at_confirm, "process.migrate") == []

    approve(session, at_review, "principal1")
    approve(session, at_review, "reviewer")
    session.refresh(at_review)
    assert at_review.status == InstanceStatus.completed


def test_migrated_instance_waiting_with_a_timer_keeps_its_due_time(session: Session) -> None:
    instance = start(session)
    approve(session, instance, "principal1")
    due = session.get(InstanceTimer, instance.id).due_at
    version, _ = deploy(session, longer_confirm(12))
    process_admin.migrate_instances(session, actor=user(session, "processadmin"), process_id="student_intake",
                                    to_version=version.version, instance_ids=[instance.id])
    session.refresh(instance)
    assert instance.process_version_id == version.id
    assert session.get(InstanceTimer, instance.id).due_at == due


def test_suspended_instance_cannot_be_completed_and_its_timer_waits(session: Session) -> None:
    instance = start(session)
    approve(session, instance, "principal1")
    due = session.get(InstanceTimer, instance.id).due_at
    admin = user(session, "admin")
    with pytest.raises(RuleViolation):
        process_admin.suspend(session, actor=admin, instance_id=instance.id, reason="")
    process_admin.suspend(session, actor=admin, instance_id=instance.id, reason="核查中")
    assert session.get(InstanceTimer, instance.id) is None
    with pytest.raises(InvalidTransition):
        approve(session, instance, "reviewer")
    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(days=1))
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.suspended

    process_admin.resume(session, actor=admin, instance_id=instance.id)
    session.expire_all()
    assert session.get(InstanceTimer, instance.id).due_at == due
    approve(session, instance, "reviewer")
    assert [e.reason for e in audit(session, instance, "process.suspend")] == ["核查中"]
    assert len(audit(session, instance, "process.resume")) == 1


def test_registrar_may_not_suspend(session: Session) -> None:
    instance = start(session)
    with pytest.raises(PermissionDenied):
        process_admin.suspend(session, actor=user(session, "registrar1"), instance_id=instance.id, reason="x")


def test_cancel_ends_the_instance_and_its_tasks(session: Session) -> None:
    instance = start(session)
    process_admin.cancel(session, actor=user(session, "processadmin"), instance_id=instance.id, reason="重复发起")
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.cancelled
    assert {t.status for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id))} == {
        TaskStatus.cancelled}
    with pytest.raises(InvalidTransition):
        process_admin.cancel(session, actor=user(session, "processadmin"), instance_id=instance.id, reason="again")


def test_failing_timer_path_errors_the_instance_and_retry_after_a_fix_moves_it_on(session: Session) -> None:
    now = utcnow()
    instance = start(session, now=now)
    approve(session, instance, "principal1", now=now)
    admin = user(session, "processadmin")
    broken, _ = deploy(session, failing_overdue(), note="坏脚本")
    process_admin.migrate_instances(session, actor=admin, process_id="student_intake", to_version=broken.version,
                                    instance_ids=[instance.id])
    due = session.get(InstanceTimer, instance.id).due_at

    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(minutes=1))
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.error
    errors = process_admin.last_errors(session, [instance.id])
    assert errors[instance.id]["element_id"] == "mark_overdue"
    rows, total = process_admin.list_instances(session, actor=admin,
                                               where=process_admin.InstanceFilter(status=InstanceStatus.error))
    assert instance.id in {r.id for r in rows}

    fixed, _ = deploy(session, intake_with((MARK_OVERDUE_START, MARK_OVERDUE_START.replace("标记逾期", "标记逾期（修正）"))),
                      note="修正")
    (moved,) = process_admin.migrate_instances(session, actor=admin, process_id="student_intake",
                                               to_version=fixed.version, instance_ids=[instance.id])
    assert moved.movable
    process_admin.retry(session, actor=admin, instance_id=instance.id, now=due + timedelta(minutes=2))
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.running
    assert len(audit(session, instance, "process.retry")) == 1
    assert open_task(session, instance).overdue


def test_instance_list_filters(session: Session) -> None:
    instance = start(session)
    admin = user(session, "processadmin")
    rows, _ = process_admin.list_instances(session, actor=admin, where=process_admin.InstanceFilter(
        process_id="student_intake", status="running", org_unit="2152019901"))
    assert instance.id in {r.id for r in rows}
    rows, _ = process_admin.list_instances(session, actor=admin, where=process_admin.InstanceFilter(
        process_id="student_intake", older_than_days=3))
    assert instance.id not in {r.id for r in rows}
    with pytest.raises(PermissionDenied):
        process_admin.list_instances(session, actor=user(session, "registrar1"), where=process_admin.InstanceFilter())


def test_two_admins_deploying_at_once_get_a_conflict_not_a_500(session: Session) -> None:
    """The other administrator's version lands between our number and our insert (PostgreSQL; SQLite's
    BEGIN IMMEDIATE serialises the two deploys, which then get distinct numbers)."""
    raced: list[int] = []

    def other_admin_wins(sess: Session, _context: object, _instances: object) -> None:
        for obj in list(sess.new):
            if isinstance(obj, ProcessVersion) and not raced:
                raced.append(obj.version)
                sess.connection().execute(insert(ProcessVersion.__table__).values(
                    process_id=obj.process_id, version=obj.version, name=obj.name, sha256="f" * 64, bpmn="",
                    forms={}, spec_json="{}", deployed_at=utcnow()))

    event.listen(session, "before_flush", other_admin_wins)
    try:
        with pytest.raises(Conflict) as err:
            deploy(session, longer_confirm(15))
    finally:
        event.remove(session, "before_flush", other_admin_wins)
    assert raced and "刷新后重新部署" in err.value.message
    version, created = deploy(session, longer_confirm(15))
    assert created and version.version == raced[0]


def test_a_new_process_from_the_template_deploys_under_its_own_id(session: Session) -> None:
    bpmn = process_admin.NEW_PROCESS_TEMPLATE.replace("new_process", "pa_test_process").encode()
    version, created = process_admin.deploy_version(session, actor=user(session, "processadmin"), bpmn=bpmn,
                                                    note="新流程")
    assert created and (version.process_id, version.version) == ("pa_test_process", 1)
    assert "pa_test_process" in {p.process_id for p in process_admin.list_processes(
        session, actor=user(session, "processadmin"))}


def test_retiring_a_bad_version_sends_new_instances_back_to_the_previous_one(session: Session) -> None:
    admin = user(session, "processadmin")
    previous = workflows.latest_version(session, "student_intake")
    bad, _ = deploy(session, longer_confirm(16), note="错误的期限")
    on_bad = start(session)
    assert on_bad.process_version_id == bad.id
    with pytest.raises(RuleViolation):
        process_admin.retire_version(session, actor=admin, process_id="student_intake", version=bad.version, reason="")
    process_admin.retire_version(session, actor=admin, process_id="student_intake", version=bad.version,
                                 reason="期限填错")
    assert workflows.latest_version(session, "student_intake").id == previous.id
    assert start(session, seq=124).process_version_id == previous.id
    session.refresh(on_bad)
    assert on_bad.process_version_id == bad.id
    with pytest.raises(Conflict):
        deploy(session, longer_confirm(16))
    with pytest.raises(InvalidTransition):
        process_admin.migration_plan(session, actor=admin, process_id="student_intake", to_version=bad.version)
    process_admin.reinstate_version(session, actor=admin, process_id="student_intake", version=bad.version)
    assert workflows.latest_version(session, "student_intake").id == bad.id


def test_the_only_version_in_use_cannot_be_retired(session: Session) -> None:
    only = workflows.latest_version(session, "spot_check")
    with pytest.raises(InvalidTransition):
        process_admin.retire_version(session, actor=user(session, "processadmin"), process_id="spot_check",
                                     version=only.version, reason="x")
