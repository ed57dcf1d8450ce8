"""Process administration: deployed versions and their differences, moving running instances to a
new version, and operating instances (suspend, resume, cancel, retry). Every verb checks the role
and writes an audit entry; none commits."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session, joinedload

from engine import definitions as engine_definitions
from engine import runtime, versions
from engine.errors import EngineError
from registry import workflows
from registry.access import holds, scope_clause
from registry.actions import REGISTERED, WITHDRAWALS, ServiceContext, starting_role
from registry.audit import AuditEntry, record
from registry.db import utcnow, write_row
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgUnit
from registry.task_reminders import hold_reminders, wake_reminders
from registry.users import Role, User
from registry.workflows import (
    HumanTask,
    InstanceStatus,
    InstanceTimer,
    ProcessInstance,
    ProcessVersion,
    TaskStatus,
)

STATUS_LABELS = {InstanceStatus.running: msg("进行中"), InstanceStatus.completed: msg("已完成"),
                 InstanceStatus.withdrawn: msg("已撤回"), InstanceStatus.error: msg("出错"),
                 InstanceStatus.suspended: msg("已暂停"), InstanceStatus.cancelled: msg("已取消")}
ACTION_LABELS = {"process.migrate": msg("迁移到新版本"), "process.suspend": msg("暂停"), "process.resume": msg("恢复"),
                 "process.cancel": msg("取消"), "process.retry": msg("重试"), "process.error": msg("出错"),
                 "process.deploy": msg("部署新版本"), "process.retire": msg("停用版本"),
                 "process.reinstate": msg("重新启用版本")}
# Instances that have not ended: they may be moved to a newer version.
UNFINISHED = (InstanceStatus.running, InstanceStatus.suspended, InstanceStatus.error)
MAX_NOTE = 500

# A new process starts as: start → one user task of the registrar with the review form → end.
NEW_PROCESS_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
  id="Definitions_new_process" targetNamespace="http://bpmn.io/schema/bpmn" exporter="mealroll" exporterVersion="1">
  <bpmn:collaboration id="Collaboration_new_process">
    <bpmn:participant id="Participant_new_process" name="新流程" processRef="new_process" />
  </bpmn:collaboration>
  <bpmn:process id="new_process" name="新流程" isExecutable="true">
    <bpmn:laneSet id="LaneSet_new_process">
      <bpmn:lane id="Lane_county_reviewer" name="county_reviewer">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="开始"><bpmn:outgoing>flow_start_review</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="form" value="review" />
          <spiffworkflow:property name="due" value="P5D" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>flow_start_review</bpmn:incoming>
      <bpmn:outgoing>flow_review_end</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="结束"><bpmn:incoming>flow_review_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="flow_start_review" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="flow_review_end" sourceRef="review" targetRef="end" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Diagram_new_process">
    <bpmndi:BPMNPlane id="Plane_new_process" bpmnElement="Collaboration_new_process">
      <bpmndi:BPMNShape id="Participant_new_process_di" bpmnElement="Participant_new_process" isHorizontal="true">
        <dc:Bounds x="120" y="60" width="560" height="180" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Lane_county_reviewer_di" bpmnElement="Lane_county_reviewer" isHorizontal="true">
        <dc:Bounds x="150" y="60" width="530" height="180" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="212" y="132" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="review_di" bpmnElement="review"><dc:Bounds x="330" y="110" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="522" y="132" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="flow_start_review_di" bpmnElement="flow_start_review">
        <di:waypoint x="248" y="150" /><di:waypoint x="330" y="150" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="flow_review_end_di" bpmnElement="flow_review_end">
        <di:waypoint x="430" y="150" /><di:waypoint x="522" y="150" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def is_process_admin(actor: User) -> bool:
    return any(g.role == Role.process_admin for g in actor.grants)


def may_operate(actor: User) -> bool:
    return any(g.role in (Role.process_admin, Role.county_admin) for g in actor.grants)


def _require_process_admin(actor: User) -> None:
    if not is_process_admin(actor):
        raise PermissionDenied(msg("只有流程管理员可以管理流程定义"))


# --- versions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProcessSummary:
    process_id: str
    name: str
    latest: ProcessVersion
    versions: int
    unfinished: int


def list_processes(session: Session, *, actor: User) -> list[ProcessSummary]:
    if not may_operate(actor):
        raise PermissionDenied(msg("只有流程管理员或系统管理员可以查看流程管理"))
    counts = dict(session.execute(select(ProcessVersion.process_id, func.count()).group_by(ProcessVersion.process_id)).all())
    unfinished = dict(session.execute(select(ProcessInstance.process_id, func.count())
                                      .where(ProcessInstance.status.in_(UNFINISHED))
                                      .group_by(ProcessInstance.process_id)).all())
    found = []
    for process_id in sorted(counts):
        latest = workflows.latest_version(session, process_id)
        found.append(ProcessSummary(process_id, latest.name, latest, counts[process_id], unfinished.get(process_id, 0)))
    return found


@dataclass(frozen=True)
class VersionRow:
    version: ProcessVersion
    deployed_by: str
    by_status: dict[str, int]


def list_versions(session: Session, *, actor: User, process_id: str) -> list[VersionRow]:
    if not may_operate(actor):
        raise PermissionDenied(msg("只有流程管理员或系统管理员可以查看流程管理"))
    rows = session.scalars(select(ProcessVersion).where(ProcessVersion.process_id == process_id)
                           .order_by(ProcessVersion.version.desc())).all()
    if not rows:
        raise NotFound(msg("找不到流程 {process_id}", process_id=process_id))
    counts: dict[int, dict[str, int]] = {}
    for version_id, status, n in session.execute(
            select(ProcessInstance.process_version_id, ProcessInstance.status, func.count())
            .where(ProcessInstance.process_id == process_id)
            .group_by(ProcessInstance.process_version_id, ProcessInstance.status)):
        counts.setdefault(version_id, {})[status] = n
    names = dict(session.execute(select(User.id, User.display_name)
                                 .where(User.id.in_({r.deployed_by_id for r in rows if r.deployed_by_id}))).all())
    return [VersionRow(r, names.get(r.deployed_by_id, msg("系统（processes/ 目录）")), counts.get(r.id, {}))
            for r in rows]


def get_version(session: Session, *, process_id: str, version: int | None = None) -> ProcessVersion:
    if version is None:
        return workflows.latest_version(session, process_id)
    found = session.scalars(select(ProcessVersion).where(ProcessVersion.process_id == process_id,
                                                         ProcessVersion.version == version)).one_or_none()
    if found is None:
        raise NotFound(msg("找不到流程 {process_id} 的第 {version} 版", process_id=process_id, version=version))
    return found


def starting_role_of(session: Session, *, process_id: str) -> str | None:
    """Who starts a process that has no starter of its own in registry/flows (made from a template or imported):
    the role of its first user task's lane (registry/actions.py). None for the registered processes."""
    if process_id in REGISTERED:
        return None
    try:
        return starting_role(workflows.definition_of(workflows.latest_version(session, process_id)))
    except NotFound:
        return None


def form_files(session: Session) -> dict[str, dict]:
    """The forms a definition may reference: those of every process's latest version."""
    return workflows.deployed_forms(session)


def deploy_version(session: Session, *, actor: User, bpmn: bytes, note: str, forms: dict[str, dict] | None = None,
                   process_id: str | None = None) -> tuple[ProcessVersion, bool]:
    """Deploy an edited (`process_id` given: it must stay that process) or a new process.

    Validation is the same as POST /api/process-definitions/validate; a definition with any error
    changes nothing. Returns the version and whether it is new (identical content is not deployed twice).
    """
    _require_process_admin(actor)
    note = (note or "").strip()
    if not note:
        raise RuleViolation(msg("变更说明：必填"), details=[{"field": "note", "message": msg("必填")}])
    if len(note) > MAX_NOTE:
        raise RuleViolation(msg("变更说明：不超过 {max_note} 字", max_note=MAX_NOTE),
                            details=[{"field": "note", "message": msg("过长")}])
    for name, schema in (forms or {}).items():
        if not isinstance(schema, dict) or not name or not name.replace("_", "").isalnum():
            raise RuleViolation(msg("表单 {name}：名称只能含字母、数字和下划线，内容须是 JSON 对象", name=name),
                                details=[{"field": f"forms.{name}", "message": msg("表单无效")}])
    all_forms = {**form_files(session), **(forms or {})}
    result = engine_definitions.validate(bpmn, roles=set(Role), forms=all_forms)
    if not result["valid"]:
        errors = result["errors"]
        raise RuleViolation(msg("流程定义有错误：{problems}", problems=join_messages(
            (f"[{e['element_id']}] " if e.get("element_id") else "") + e["message"] for e in errors[:5])),
            details=[{"field": "bpmn", "element_id": e.get("element_id"), "message": e["message"]} for e in errors])
    found_id = result["processes"][0]["id"] if len(result["processes"]) == 1 else None
    existing = session.scalar(select(func.count()).select_from(ProcessVersion)
                              .where(ProcessVersion.process_id == found_id)) if found_id else 0
    if process_id is None and existing:
        raise Conflict(msg("流程 id {process_id} 已被另一个流程使用，请换一个 id", process_id=found_id),
                       details=[{"field": "bpmn", "element_id": found_id, "message": msg("流程 id 重复")}])
    if process_id is not None and found_id != process_id:
        raise RuleViolation(msg("流程 id 必须保持为 {process_id}（文件中为 {found_id}）",
                                process_id=process_id, found_id=found_id),
                            details=[{"field": "bpmn", "element_id": found_id, "message": msg("流程 id 不可修改")}])
    before = session.scalar(select(func.max(ProcessVersion.id)))
    version = workflows.deploy(session, bpmn=bpmn, forms=all_forms, by=actor, note=note)
    if version.retired_at is not None:
        raise Conflict(msg("内容与已停用的第 {version} 版相同：请在版本列表中重新启用它", version=version.version),
                       details=[{"field": "bpmn", "message": msg("与已停用版本相同")}])
    return version, before is None or version.id > before


def retire_version(session: Session, *, actor: User, process_id: str, version: int, reason: str,
                   now: datetime | None = None) -> ProcessVersion:
    """Stop starting new instances on a version (a bad deploy): they start on the newest version
    still in use. Instances already on it stay there until moved."""
    _require_process_admin(actor)
    text = _reason(reason)
    found = get_version(session, process_id=process_id, version=version)
    if found.retired_at is not None:
        raise InvalidTransition(msg("第 {version} 版已停用", version=version))
    in_use = session.scalar(select(func.count()).select_from(ProcessVersion).where(
        ProcessVersion.process_id == process_id, ProcessVersion.retired_at.is_(None)))
    if in_use <= 1:
        raise InvalidTransition(msg("这是唯一在用的版本，不能停用"))
    found.retired_at = now or utcnow()
    session.flush()
    record(session, actor=actor, action="process.retire", object_type="process_version", object_id=found.id,
           before={"version": version, "retired": False}, after={"version": version, "retired": True}, reason=text)
    return found


def reinstate_version(session: Session, *, actor: User, process_id: str, version: int) -> ProcessVersion:
    _require_process_admin(actor)
    found = get_version(session, process_id=process_id, version=version)
    if found.retired_at is None:
        raise InvalidTransition(msg("第 {version} 版在用，无需重新启用", version=version))
    found.retired_at = None
    session.flush()
    record(session, actor=actor, action="process.reinstate", object_type="process_version", object_id=found.id,
           before={"version": version, "retired": True}, after={"version": version, "retired": False})
    return found


def version_diff(session: Session, *, actor: User, process_id: str, old: int, new: int) -> versions.VersionDiff:
    if not may_operate(actor):
        raise PermissionDenied(msg("只有流程管理员或系统管理员可以查看流程管理"))
    older, newer = get_version(session, process_id=process_id, version=old), get_version(
        session, process_id=process_id, version=new)
    return versions.diff(older.bpmn.encode("utf-8"), newer.bpmn.encode("utf-8"))


# --- migration -------------------------------------------------------------------------------

@dataclass(frozen=True)
class MigrationCheck:
    instance: ProcessInstance
    blockers: list[versions.Blocker]

    @property
    def movable(self) -> bool:
        return not self.blockers


def _check(session: Session, instance: ProcessInstance, target: ProcessVersion) -> list[versions.Blocker]:
    old = workflows.definition_of_instance(session, instance)
    new = workflows.definition_of(target)
    try:
        return versions.blockers(json.loads(instance.state), old, new)
    except EngineError as err:
        return [versions.Blocker(err.element_id, msg("实例状态无法读取：{message}", message=err.message))]


def migration_plan(session: Session, *, actor: User, process_id: str, to_version: int) -> list[MigrationCheck]:
    """Dry run: every unfinished instance on an older version, and whether (and why not) it can move."""
    _require_process_admin(actor)
    target = get_version(session, process_id=process_id, version=to_version)
    if target.retired_at is not None:
        raise InvalidTransition(msg("第 {version} 版已停用，不能迁移到它", version=to_version))
    rows = session.scalars(select(ProcessInstance).join(ProcessVersion)
                           .where(ProcessInstance.process_id == process_id, ProcessInstance.status.in_(UNFINISHED),
                                  ProcessVersion.version < target.version)
                           .options(joinedload(ProcessInstance.version), joinedload(ProcessInstance.org_unit))
                           .order_by(ProcessInstance.id)).unique().all()
    return [MigrationCheck(i, _check(session, i, target)) for i in rows]


def migrate_instances(session: Session, *, actor: User, process_id: str, to_version: int,
                      instance_ids: list[int] | None = None, now: datetime | None = None) -> list[MigrationCheck]:
    """Move every movable instance of the dry run (or those of `instance_ids`) in one batch; each is
    checked again under its row lock, and gets its own audit entry."""
    now = now or utcnow()
    plan = migration_plan(session, actor=actor, process_id=process_id, to_version=to_version)
    target = get_version(session, process_id=process_id, version=to_version)
    wanted = set(instance_ids) if instance_ids is not None else None
    outcome = []
    for check in plan:
        if wanted is not None and check.instance.id not in wanted:
            continue
        if check.movable:
            outcome.append(MigrationCheck(check.instance, _move(session, actor, check.instance.id, target, now)))
        else:
            outcome.append(check)
    return outcome


def _move(session: Session, actor: User, instance_id: int, target: ProcessVersion, now: datetime) -> list[versions.Blocker]:
    instance = workflows.lock_instance(session, instance_id)
    found = _check(session, instance, target)
    if found:
        return found
    old_version = instance.version.version
    workflow = versions.migrate(json.loads(instance.state), workflows.definition_of_instance(session, instance),
                                workflows.definition_of(target))
    write_row(session, ProcessInstance, instance.id, {"process_version_id": target.id})
    session.expire(instance, ["version"])
    workflows.save_state(session, instance, workflow, actor=actor, now=now)
    # A step it waits in may have moved lane or changed its title or form: the inbox row follows.
    definition = workflows.definition_of(target)
    for task in runtime.ready_tasks(workflow):
        info = definition.user_tasks.get(task.task_id)
        if info is not None:
            session.execute(update(HumanTask).where(HumanTask.task_guid == task.guid, HumanTask.status == TaskStatus.open)
                            .values(title=info.name, role=info.lane or "", form=info.form))
    record(session, actor=actor, action="process.migrate", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id,
           before={"version": old_version}, after={"version": target.version, "process_version_id": target.id})
    return []


# --- operating instances ---------------------------------------------------------------------

def _operable(session: Session, actor: User, instance_id: int, *, county_admin_too: bool) -> ProcessInstance:
    instance = workflows.lock_instance(session, instance_id)
    roles = [Role.process_admin, Role.county_admin] if county_admin_too else [Role.process_admin]
    if not any(holds(actor, role, instance.org_unit) for role in roles):
        raise PermissionDenied(msg("只有流程管理员或系统管理员可以执行此操作") if county_admin_too
                               else msg("只有流程管理员可以执行此操作"))
    return instance


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise RuleViolation(msg("原因：必填"), details=[{"field": "reason", "message": msg("必填")}])
    if len(text) > MAX_NOTE:
        raise RuleViolation(msg("原因：不超过 {max_note} 字", max_note=MAX_NOTE),
                            details=[{"field": "reason", "message": msg("过长")}])
    return text


def suspend(session: Session, *, actor: User, instance_id: int, reason: str) -> ProcessInstance:
    """Held: its tasks cannot be completed and leave the inbox's tabs (counted apart, registry/inbox.py), its
    timers wait (the due times stay in its state and come back on resume), and so do its tasks' reminders
    and escalations (their rows and due dates are kept)."""
    instance = _operable(session, actor, instance_id, county_admin_too=True)
    text = _reason(reason)
    if instance.status != InstanceStatus.running:
        raise InvalidTransition(msg("只能暂停进行中的流程（当前：{status}）",
                                    status=STATUS_LABELS.get(instance.status, instance.status)))
    workflows.set_status(session, instance, InstanceStatus.suspended)
    session.execute(InstanceTimer.__table__.delete().where(InstanceTimer.instance_id == instance.id))
    hold_reminders(session, instance_id=instance.id)
    record(session, actor=actor, action="process.suspend", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id, reason=text,
           before={"status": InstanceStatus.running}, after={"status": InstanceStatus.suspended})
    return instance


def resume(session: Session, *, actor: User, instance_id: int, reason: str | None = None,
           now: datetime | None = None) -> ProcessInstance:
    """Running again: a timer that fell due meanwhile fires at the next poll, and its tasks' reminders are
    looked at again at once. Due dates are not moved: a deadline such as Art. 13's 9月10日 does not
    shift because an instance was held; a supervisor moves a task's due date when that is fair."""
    now = now or utcnow()
    instance = _operable(session, actor, instance_id, county_admin_too=True)
    if instance.status != InstanceStatus.suspended:
        raise InvalidTransition(msg("只能恢复已暂停的流程"))
    workflows.set_status(session, instance, InstanceStatus.running)
    workflow = runtime.restore(workflows.definition_of_instance(session, instance), json.loads(instance.state),
                               services={})
    due = runtime.next_timer_due(workflow)
    if due is not None:  # a timer that fell due while suspended fires at the next poll
        session.execute(InstanceTimer.__table__.insert().values(instance_id=instance.id, due_at=due))
    wake_reminders(session, instance_id=instance.id, now=now)
    record(session, actor=actor, action="process.resume", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id, reason=(reason or "").strip() or None,
           before={"status": InstanceStatus.suspended}, after={"status": InstanceStatus.running})
    return instance


def cancel(session: Session, *, actor: User, instance_id: int, reason: str,
           now: datetime | None = None) -> ProcessInstance:
    """Ended by an administrator: open tasks are cancelled and the subject goes back to where it was
    before the start, as when its initiator withdraws it."""
    now = now or utcnow()
    instance = _operable(session, actor, instance_id, county_admin_too=True)
    text = _reason(reason)
    if instance.status not in UNFINISHED:
        raise InvalidTransition(msg("流程已结束，不能取消"))
    before = instance.status
    workflow = runtime.restore(workflows.definition_of_instance(session, instance), json.loads(instance.state),
                               services={})
    runtime.cancel(workflow)
    undo = WITHDRAWALS.get(instance.process_id)
    if undo is not None and instance.subject_id is not None:
        undo(ServiceContext(session=session, actor=actor, instance_id=instance.id, now=now), instance.subject_id, text)
    # Reminders held while it was suspended: the next scan finds their tasks closed and removes them.
    wake_reminders(session, instance_id=instance.id, now=now)
    workflows.save_state(session, instance, workflow, actor=actor, now=now)
    write_row(session, ProcessInstance, instance.id, {"status": InstanceStatus.cancelled, "ended_at": now})
    record(session, actor=actor, action="process.cancel", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id, reason=text,
           before={"status": before}, after={"status": InstanceStatus.cancelled})
    return instance


def retry(session: Session, *, actor: User, instance_id: int, now: datetime | None = None) -> ProcessInstance:
    """Run an errored instance on from where it stopped (after the definition was fixed and the
    instance moved to the fixed version); failing again leaves it in error with the new message."""
    now = now or utcnow()
    instance = _operable(session, actor, instance_id, county_admin_too=False)
    if instance.status != InstanceStatus.error:
        raise InvalidTransition(msg("只能重试出错的流程"))
    workflows.set_status(session, instance, InstanceStatus.running)
    record(session, actor=actor, action="process.retry", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id,
           before={"status": InstanceStatus.error}, after={"version": instance.version.version})
    advanced = workflows.advance_instance(session, instance_id=instance.id, now=now)
    if advanced.status == InstanceStatus.running:
        wake_reminders(session, instance_id=instance.id, now=now)
    return advanced


# --- reading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstanceFilter:
    process_id: str | None = None
    version: int | None = None
    status: str | None = None
    org_unit: str | None = None  # code or part of the name of the school (or any org unit)
    older_than_days: int | None = None


def list_instances(session: Session, *, actor: User, where: InstanceFilter, limit: int = 50,
                   offset: int = 0, now: datetime | None = None) -> tuple[list[ProcessInstance], int]:
    if not may_operate(actor):
        raise PermissionDenied(msg("只有流程管理员或系统管理员可以查看流程实例"))
    query = (select(ProcessInstance).join(ProcessVersion).join(OrgUnit, ProcessInstance.org_unit_id == OrgUnit.id)
             .where(scope_clause(actor, OrgUnit.path, roles=[Role.process_admin, Role.county_admin])))
    if where.process_id:
        query = query.where(ProcessInstance.process_id == where.process_id)
    if where.version:
        query = query.where(ProcessVersion.version == where.version)
    if where.status:
        query = query.where(ProcessInstance.status == where.status)
    if where.org_unit:
        query = query.where((OrgUnit.code == where.org_unit) | OrgUnit.name.contains(where.org_unit, autoescape=True))
    if where.older_than_days:
        query = query.where(ProcessInstance.started_at <= (now or utcnow()) - timedelta(days=where.older_than_days))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.options(joinedload(ProcessInstance.version), joinedload(ProcessInstance.org_unit))
                           .order_by(case((ProcessInstance.status == InstanceStatus.error, 0), else_=1),
                                     ProcessInstance.id.desc()).limit(limit).offset(offset)).unique().all()
    return list(rows), total


def last_errors(session: Session, instance_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The latest process.error entry of each instance: the failing element and the message."""
    if not instance_ids:
        return {}
    found: dict[int, dict[str, Any]] = {}
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.instance_id.in_(instance_ids),
                                                          AuditEntry.action == "process.error")
                                 .order_by(AuditEntry.id)):
        found[entry.instance_id] = entry.after or {}
    return found


@dataclass(frozen=True)
class InstanceDetail:
    instance: ProcessInstance
    data: dict[str, Any]
    timers: list[datetime]
    tasks: list[HumanTask]
    history: list[AuditEntry]
    error: dict[str, Any] | None
    newer: list[ProcessVersion]


def instance_detail(session: Session, *, actor: User, instance_id: int) -> InstanceDetail:
    if not may_operate(actor):
        raise PermissionDenied(msg("只有流程管理员或系统管理员可以管理流程实例"))
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or not any(holds(actor, r, instance.org_unit) for r in (Role.process_admin, Role.county_admin)):
        raise NotFound(msg("找不到流程实例 {instance_id}", instance_id=instance_id))
    workflow = runtime.restore(workflows.definition_of_instance(session, instance), json.loads(instance.state),
                               services={})
    data: dict[str, Any] = dict(workflow.data)
    for task in runtime.ready_tasks(workflow):
        data.update(task.data)
    if not data and workflow.last_task is not None:
        data = dict(workflow.last_task.data)
    timers = sorted(session.scalars(select(InstanceTimer.due_at).where(InstanceTimer.instance_id == instance.id)))
    if not timers and instance.status == InstanceStatus.suspended:
        due = runtime.next_timer_due(workflow)
        timers = [due] if due else []
    newer = list(session.scalars(select(ProcessVersion).where(ProcessVersion.process_id == instance.process_id,
                                                              ProcessVersion.version > instance.version.version)
                                 .order_by(ProcessVersion.version)))
    return InstanceDetail(instance, data, timers, workflows.instance_tasks(session, instance),
                          workflows.instance_history(session, instance),
                          last_errors(session, [instance.id]).get(instance.id) if instance.status == InstanceStatus.error
                          else None, newer)
