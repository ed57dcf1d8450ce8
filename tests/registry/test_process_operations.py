"""Issue 8's last gaps on a real database: a script failing after a person's completion, starting a process
made from the template, and what a suspended instance does to the inbox, reminders and timers."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry import inbox, notifications, process_admin, reminders, workflows
from registry.audit import AuditEntry
from registry.errors import DomainError, PermissionDenied, RuleViolation
from registry.inbox import InboxQuery, Tab
from registry.notifications import Kind, Notification
from registry.task_reminders import TaskReminder
from registry.workflows import HumanTask, InstanceStatus, InstanceTimer, ProcessInstance, TaskStatus
from tests.factories import make_user, user

ZONE = ZoneInfo("Asia/Shanghai")
# Tuesday 1 September 2026, 10:00 in the county (the working-day calendar covers 2026).
OPENED = datetime(2026, 9, 1, 10, tzinfo=ZONE)
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
START_FORM = {"$schema": DRAFT_2020_12, "type": "object", "required": ["title"], "additionalProperties": False,
              "properties": {"title": {"type": "string", "title": "事项标题", "minLength": 1, "maxLength": 100}}}


def from_template(process_id: str, *, script: str | None = None, start_form: str | None = None,
                  due: str = "P5D") -> bytes:
    """The modeler's new-process template under `process_id`; with `script`, a script task 计算结果 after the
    review; with `start_form`, the start event names that form."""
    text = process_admin.NEW_PROCESS_TEMPLATE.replace("new_process", process_id)
    text = text.replace('name="due" value="P5D"', f'name="due" value="{due}"')
    if script is not None:
        text = text.replace(
            '<bpmn:endEvent id="end" name="结束"><bpmn:incoming>flow_review_end</bpmn:incoming></bpmn:endEvent>',
            '<bpmn:scriptTask id="compute" name="计算结果"><bpmn:incoming>flow_review_end</bpmn:incoming>'
            f'<bpmn:outgoing>flow_compute_end</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'
            '<bpmn:endEvent id="end" name="结束"><bpmn:incoming>flow_compute_end</bpmn:incoming></bpmn:endEvent>'
            '<bpmn:sequenceFlow id="flow_compute_end" sourceRef="compute" targetRef="end" />')
        text = text.replace('sourceRef="review" targetRef="end"', 'sourceRef="review" targetRef="compute"')
        text = text.replace("<bpmn:flowNodeRef>end</bpmn:flowNodeRef>",
                            "<bpmn:flowNodeRef>compute</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>")
    if start_form is not None:
        text = text.replace(
            '<bpmn:startEvent id="start" name="开始">',
            '<bpmn:startEvent id="start" name="开始"><bpmn:extensionElements><spiffworkflow:properties>'
            f'<spiffworkflow:property name="form" value="{start_form}" /></spiffworkflow:properties>'
            '</bpmn:extensionElements>')
    return text.encode()


def deploy_new(session: Session, bpmn: bytes, forms: dict | None = None, process_id: str | None = None):  # type: ignore[no-untyped-def]
    version, _ = process_admin.deploy_version(session, actor=user(session, "processadmin"), bpmn=bpmn,
                                              note="测试", forms=forms, process_id=process_id)
    return version


def open_tasks(session: Session, instance: ProcessInstance) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                        HumanTask.status == TaskStatus.open)))


def entries(session: Session, instance: ProcessInstance, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance.id,
                                                         AuditEntry.action == action).order_by(AuditEntry.id)))


# --- 1. a script failing after a person completed a task ------------------------------------------

def test_failing_script_after_a_completion_keeps_the_completion_and_errors_the_instance(session: Session) -> None:
    deploy_new(session, from_template("pa_failing", script="result = 1 / 0"))
    reviewer = user(session, "reviewer")
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_failing", data={})
    (task,) = open_tasks(session, instance)

    done, warnings = workflows.complete_task(session, actor=reviewer, task_id=task.id,
                                             data={"decision": "approve", "comment": "同意"})
    session.expire_all()
    assert done.status == TaskStatus.completed and done.completed_by_id == reviewer.id
    assert done.outcome == "approve" and done.comment == "同意"
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.error
    assert [w.code for w in warnings] == ["next_step_failed"]
    assert "计算结果" in warnings[0].message and "流程管理员" in warnings[0].message
    assert len(entries(session, instance, "task.complete")) == 1
    (error,) = entries(session, instance, "process.error")
    assert error.after["element_id"] == "compute" and error.after["element_name"] == "计算结果"
    assert error.after["task_id"] == task.id and "division by zero" in error.after["message"]
    assert process_admin.last_errors(session, [instance.id])[instance.id]["element_id"] == "compute"
    assert workflows.completion_failure(session, actor=reviewer) == warnings[0].message

    told = session.scalars(select(Notification).where(Notification.instance_id == instance.id,
                                                      Notification.kind == Kind.process_error)).all()
    assert {n.recipient_id for n in told} == {user(session, "processadmin").id}
    assert {n.channel for n in told} == {notifications.Channel.in_app}
    assert "计算结果" in told[0].subject and told[0].link == f"/processes/instances/{instance.id}"
    # The state holds the completion: the review is done in it, not waiting again.
    workflow = workflows.runtime.restore(workflows.definition_of_instance(session, instance),
                                         workflows.json.loads(session.get(ProcessInstance, instance.id).state),
                                         services={})
    assert [h["task_id"] for h in workflows.runtime.history(workflow)] == ["review"]
    assert workflows.runtime.ready_tasks(workflow) == []


def test_retry_after_deploying_a_fix_and_migrating_finishes_the_instance(session: Session) -> None:
    deploy_new(session, from_template("pa_fixable", script="result = 1 / 0"))
    reviewer, admin = user(session, "reviewer"), user(session, "processadmin")
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_fixable", data={})
    workflows.complete_task(session, actor=reviewer, task_id=open_tasks(session, instance)[0].id,
                            data={"decision": "approve"})
    with pytest.raises(PermissionDenied):
        process_admin.retry(session, actor=reviewer, instance_id=instance.id)
    process_admin.retry(session, actor=admin, instance_id=instance.id)  # the same broken version fails again
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.error
    assert len(entries(session, instance, "process.error")) == 2

    fixed = deploy_new(session, from_template("pa_fixable", script="result = 1"), process_id="pa_fixable")
    (moved,) = process_admin.migrate_instances(session, actor=admin, process_id="pa_fixable",
                                               to_version=fixed.version, instance_ids=[instance.id])
    assert moved.movable, moved.blockers
    process_admin.retry(session, actor=admin, instance_id=instance.id)
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.completed
    assert workflows.completion_failure(session, actor=reviewer) is None


def test_a_failing_timer_path_tells_the_process_admins_too(session: Session) -> None:
    from tests.registry.test_process_admin import approve, failing_overdue, start

    instance = start(session, seq=654)
    approve(session, instance, "principal1")
    admin = user(session, "processadmin")
    broken = process_admin.deploy_version(session, actor=admin, bpmn=failing_overdue(), note="坏脚本",
                                          process_id="student_intake")[0]
    process_admin.migrate_instances(session, actor=admin, process_id="student_intake", to_version=broken.version,
                                    instance_ids=[instance.id])
    (task,) = open_tasks(session, instance)
    assert session.get(TaskReminder, task.id).next_at is not None
    due = session.get(InstanceTimer, instance.id).due_at
    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(minutes=1))
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.error
    assert session.get(TaskReminder, task.id).next_at is None  # no reminders while it waits for the fix
    told = session.scalars(select(Notification).where(Notification.instance_id == instance.id,
                                                      Notification.kind == Kind.process_error)).all()
    assert {n.recipient_id for n in told} == {admin.id} and "标记逾期" in told[0].subject


def service_after_review(process_id: str, operator: str, value: str) -> bytes:
    return from_template(process_id, script="result = 1").decode().replace(
        '<bpmn:scriptTask id="compute" name="计算结果">', '<bpmn:serviceTask id="compute" name="计算结果">'
        f'<bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="out">'
        f'<spiffworkflow:parameters><spiffworkflow:parameter id="{value.split("=")[0]}" type="str" '
        f'value="{value.split("=", 1)[1]}" /></spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>'
        '</bpmn:extensionElements>'
    ).replace("<bpmn:script>result = 1</bpmn:script></bpmn:scriptTask>", "</bpmn:serviceTask>").encode()


def test_a_failing_service_task_after_a_completion_errors_the_instance_too(session: Session) -> None:
    # notify_initiator without a message raises ValueError: a fault of the definition, not of the user's data.
    deploy_new(session, service_after_review("pa_service", "notify_initiator", "message=&quot;&quot;"))
    reviewer = user(session, "reviewer")
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_service", data={})
    workflows.complete_task(session, actor=reviewer, task_id=open_tasks(session, instance)[0].id,
                            data={"decision": "approve"})
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.error
    assert process_admin.last_errors(session, [instance.id])[instance.id]["element_id"] == "compute"


def test_a_registry_refusal_in_a_service_task_is_still_the_users_answer(session: Session) -> None:
    """A registry action that refuses (NotFound, a rule) answers the user as before: nothing is kept."""
    deploy_new(session, service_after_review("pa_refusing", "activate_student", "student_id=&quot;999999&quot;"))
    reviewer = user(session, "reviewer")
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_refusing", data={})
    (task,) = open_tasks(session, instance)
    session.commit()
    with pytest.raises(DomainError):
        workflows.complete_task(session, actor=reviewer, task_id=task.id, data={"decision": "approve"})
    session.rollback()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.running
    assert session.get(HumanTask, task.id).status == TaskStatus.open


# --- 2. starting a process made from the template -------------------------------------------------

def test_a_process_from_the_template_is_started_by_its_first_lane_and_runs_through_the_inbox(session: Session) -> None:
    deploy_new(session, from_template("pa_generic"))
    reviewer = user(session, "reviewer")
    assert "pa_generic" in {p.process_id for p in workflows.startable_processes(session, actor=reviewer)}
    assert "pa_generic" not in {p.process_id for p in workflows.startable_processes(
        session, actor=user(session, "registrar1"))}

    instance, warnings = workflows.start_process(session, actor=reviewer, process_id="pa_generic", data={})
    assert warnings == [] and instance.org_unit.code == "520199" and instance.started_by_id == reviewer.id
    (start,) = entries(session, instance, "process.start")
    assert start.actor_id == reviewer.id and start.after["rule"] == "generic"
    assert start.after["role"] == "county_reviewer"
    tasks, _ = inbox.list_inbox(session, actor=reviewer, query=InboxQuery(tab=Tab.to_claim))
    (task,) = [t for t in tasks if t.instance_id == instance.id]
    assert task.title == "审核" and task.role == "county_reviewer" and task.due_at is not None

    workflows.complete_task(session, actor=reviewer, task_id=task.id, data={"decision": "approve"})
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.completed


def test_a_user_of_another_role_may_not_start_it(session: Session) -> None:
    deploy_new(session, from_template("pa_refused"))
    with pytest.raises(PermissionDenied) as refused:
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="pa_refused", data={})
    assert "县营养办审核员" in refused.value.message
    assert session.scalars(select(ProcessInstance).where(ProcessInstance.process_id == "pa_refused")).first() is None


def test_registered_processes_keep_their_starters(session: Session) -> None:
    with pytest.raises(RuleViolation) as refused:  # annual_cycle is started by the system only
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="annual_cycle", data={})
    assert "不能直接发起" in refused.value.message
    with pytest.raises(RuleViolation) as chosen:
        workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                data={"student": {}}, org_unit="5201990001")
    assert chosen.value.details[0]["field"] == "org_unit"
    names = {p.process_id for p in workflows.startable_processes(session, actor=user(session, "registrar1"))}
    assert not names & {"student_intake", "annual_cycle", "key_field_change"}


def test_start_data_is_checked_against_the_start_form_or_must_be_empty(session: Session) -> None:
    deploy_new(session, from_template("pa_form", start_form="pa_start_form"), forms={"pa_start_form": START_FORM})
    deploy_new(session, from_template("pa_no_form"))
    reviewer = user(session, "reviewer")
    with pytest.raises(RuleViolation) as missing:
        workflows.start_process(session, actor=reviewer, process_id="pa_form", data={})
    assert "事项标题" in missing.value.message and missing.value.details[0]["field"] == "title"
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_form", data={"title": "食堂检查"})
    (task,) = open_tasks(session, instance)
    assert workflows.task_view(session, task)[0]["title"] == "食堂检查"
    with pytest.raises(RuleViolation) as extra:
        workflows.start_process(session, actor=reviewer, process_id="pa_no_form", data={"anything": 1})
    assert extra.value.details[0]["field"] == "data" and "启动数据" in extra.value.message


def test_the_unit_is_the_starters_own_or_a_school_in_their_scope(session: Session) -> None:
    deploy_new(session, from_template("pa_schools").replace(b'name="county_reviewer"', b'name="school_principal"'))
    principal = user(session, "principal1")
    instance, _ = workflows.start_process(session, actor=principal, process_id="pa_schools", data={})
    assert instance.org_unit_id == next(g.org_unit_id for g in principal.grants if g.role == "school_principal")
    other_school = next(g.org_unit.code for g in user(session, "principal2").grants)
    with pytest.raises(RuleViolation) as outside:
        workflows.start_process(session, actor=principal, process_id="pa_schools", data={}, org_unit=other_school)
    assert outside.value.details[0]["field"] == "org_unit"

    deploy_new(session, from_template("pa_county"))
    reviewer = user(session, "reviewer")
    started, _ = workflows.start_process(session, actor=reviewer, process_id="pa_county", data={},
                                         org_unit=other_school)
    assert started.org_unit.code == other_school  # a school within the county reviewer's scope


def test_a_starter_with_the_role_at_two_units_must_choose(session: Session) -> None:
    deploy_new(session, from_template("pa_two_units").replace(b'name="county_reviewer"', b'name="school_principal"'))
    schools = [next(g.org_unit.code for g in user(session, name).grants) for name in ("principal1", "principal2")]
    twice = make_user(session, "principal_both", role="school_principal", org_unit_code=schools[0])
    from registry.users import Role, grant_role
    grant_role(session, user=twice, role=Role.school_principal, org_unit_code=schools[1])
    session.refresh(twice)
    with pytest.raises(RuleViolation) as choose:
        workflows.start_process(session, actor=twice, process_id="pa_two_units", data={})
    assert choose.value.details[0]["field"] == "org_unit"
    instance, _ = workflows.start_process(session, actor=twice, process_id="pa_two_units", data={},
                                          org_unit=schools[1])
    assert instance.org_unit.code == schools[1]


# --- 3. suspended instances -----------------------------------------------------------------------

def test_tasks_of_a_suspended_instance_leave_the_inbox_and_come_back_on_resume(session: Session) -> None:
    deploy_new(session, from_template("pa_held"))
    reviewer, admin = user(session, "reviewer"), user(session, "processadmin")
    held, _ = workflows.start_process(session, actor=reviewer, process_id="pa_held", data={})
    other, _ = workflows.start_process(session, actor=reviewer, process_id="pa_held", data={})
    query = InboxQuery(tab=Tab.to_claim, process_id="pa_held")
    before = inbox.tab_counts(session, actor=reviewer, query=query)[Tab.to_claim]
    assert before == 2

    process_admin.suspend(session, actor=admin, instance_id=held.id, reason="核查")
    tasks, total = inbox.list_inbox(session, actor=reviewer, query=query)
    assert total == 1 and {t.instance_id for t in tasks} == {other.id}
    assert inbox.tab_counts(session, actor=reviewer, query=query)[Tab.to_claim] == 1
    assert inbox.held_count(session, actor=reviewer, query=query) == 1
    scope = InboxQuery(tab=Tab.scope, process_id="pa_held")
    assert {t.instance_id for t in inbox.list_inbox(session, actor=reviewer, query=scope)[0]} == {other.id}
    # The plain task list (GET /api/tasks without a tab) stays every task of the caller's roles, as before.
    assert held.id in {t.instance_id for t in workflows.list_tasks(session, actor=reviewer)[0]}

    process_admin.resume(session, actor=admin, instance_id=held.id)
    assert inbox.tab_counts(session, actor=reviewer, query=query)[Tab.to_claim] == 2
    assert inbox.held_count(session, actor=reviewer, query=query) == 0


def quiet_earlier_reminders(session: Session) -> None:
    """Reminder rows other tests committed to the shared database are not this test's to scan."""
    session.execute(update(TaskReminder).values(next_at=None))
    session.commit()


def test_no_reminder_or_escalation_while_suspended_and_they_resume_after(session: Session, sessions) -> None:  # type: ignore[no-untyped-def]
    quiet_earlier_reminders(session)
    deploy_new(session, from_template("pa_remind", due="P1D"))
    reviewer, admin = user(session, "reviewer"), user(session, "processadmin")
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_remind", data={}, now=OPENED)
    (task,) = open_tasks(session, instance)
    process_admin.suspend(session, actor=admin, instance_id=instance.id, reason="核查")
    assert session.get(TaskReminder, task.id).next_at is None
    session.commit()

    late = datetime(2026, 9, 14, 9, tzinfo=ZONE)  # 8 working days after the due day
    assert reminders.scan(sessions, now=late) == []
    session.expire_all()
    reminder = session.get(TaskReminder, task.id)
    assert reminder is not None and reminder.escalated_at is None  # kept, with its due date, for later
    assert reminder.due_at == task.due_at
    assert not session.scalars(select(Notification).where(Notification.task_id == task.id)).all()

    process_admin.resume(session, actor=admin, instance_id=instance.id, now=late)
    session.commit()
    reminders.scan(sessions, now=late)
    session.expire_all()
    kinds = {n.kind for n in session.scalars(select(Notification).where(Notification.task_id == task.id))}
    assert Kind.overdue in kinds and Kind.escalation in kinds
    assert session.get(HumanTask, task.id).due_at == task.due_at  # the due date was not moved
    county_admin = user(session, "admin")
    assert task.id in {t.id for t, _ in reminders.escalated_tasks(session, actor=county_admin)}
    process_admin.suspend(session, actor=admin, instance_id=instance.id, reason="再次核查")
    assert task.id not in {t.id for t, _ in reminders.escalated_tasks(session, actor=county_admin)}


def test_a_reminder_row_claimed_while_suspended_sends_nothing(session: Session, sessions) -> None:  # type: ignore[no-untyped-def]
    """The scan's own check, for a row that was due before the hold (or an instance stopped in error)."""
    quiet_earlier_reminders(session)
    deploy_new(session, from_template("pa_race", due="P1D"))
    reviewer, admin = user(session, "reviewer"), user(session, "processadmin")
    instance, _ = workflows.start_process(session, actor=reviewer, process_id="pa_race", data={}, now=OPENED)
    (task,) = open_tasks(session, instance)
    process_admin.suspend(session, actor=admin, instance_id=instance.id, reason="核查")
    session.get(TaskReminder, task.id).next_at = OPENED
    session.commit()
    assert reminders.scan(sessions, now=task.due_at + timedelta(days=5)) == []
    session.expire_all()
    assert session.get(TaskReminder, task.id).next_at is None
    assert not session.scalars(select(Notification).where(Notification.task_id == task.id)).all()


def test_a_suspended_instances_timer_does_not_fire_until_resumed(session: Session, sessions) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import student_data
    from workers.tasks import fire_due_timers

    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(seq=321)})
    workflows.complete_task(session, actor=user(session, "principal1"), task_id=open_tasks(session, instance)[0].id,
                            data={"decision": "approve"})
    due = session.get(InstanceTimer, instance.id).due_at
    admin = user(session, "admin")
    process_admin.suspend(session, actor=admin, instance_id=instance.id, reason="核查")
    session.commit()
    assert session.get(InstanceTimer, instance.id) is None  # nothing for the worker's poll to claim
    # Even with a stray timer row due, the worker's advance leaves a suspended instance alone.
    session.add(InstanceTimer(instance_id=instance.id, due_at=due - timedelta(days=30)))
    session.commit()
    fire_due_timers(sessions)
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == InstanceStatus.suspended
    assert not open_tasks(session, instance)[0].overdue
    assert session.get(InstanceTimer, instance.id) is None

    process_admin.resume(session, actor=admin, instance_id=instance.id)
    session.commit()
    assert session.get(InstanceTimer, instance.id).due_at == due
