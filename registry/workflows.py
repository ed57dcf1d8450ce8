"""Deployed process versions, running instances, the task inbox projection and instance timers.

One unit of work advances one instance: lock its row, restore it against the cached spec,
act, run engine steps to the next wait state, save the state, rebuild its human_task and
instance_timer rows, write the audit entry. The caller (request or worker task) commits.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, joinedload, mapped_column, object_session, relationship
from sqlalchemy.orm.util import identity_key

from engine import definitions as engine_definitions
from engine import forms as engine_forms
from engine import runtime
from engine import steps as engine_steps
from engine.errors import DefinitionError, EngineError, FormDataError, TaskNotReady
from engine.timers import WorkingDays, due_at, parse_due
from registry import drafts, notifications, process_guards, working_days
from registry import instructions as task_instructions
from registry.access import holds, oversees, scope_clause, sees
from registry.actions import (
    REGISTERED,
    SERVICES,
    TASK_ACTIONS,
    WITHDRAWALS,
    ServiceContext,
    StartPlan,
    generic_plan,
    starter_for,
    starting_role,
    starting_units,
)
from registry.audit import AuditEntry, record
from registry.db import Base, JSONType, UTCDateTime, is_postgres, utcnow, write_row
from registry.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleViolation,
    join_messages,
    msg,
)
from registry.file_store import FileStore
from registry.forms import choices, validate_form
from registry.org_units import OrgUnit, county_of, find_org_unit
from registry.rules.findings import Finding
from registry.settings import local_zone
from registry.task_reminders import TaskReminder, hold_reminders
from registry.users import ROLE_LABELS, Role, User


class InstanceStatus(StrEnum):
    running = "running"
    completed = "completed"
    withdrawn = "withdrawn"  # taken back by its initiator before anyone after them acted (撤回)
    error = "error"  # a script or service task failed while a timer moved it on: see process.error in its history
    suspended = "suspended"  # held by a process administrator: no task may be completed, no timer fires
    cancelled = "cancelled"  # ended by an administrator, with a reason


# Instances whose open tasks nobody can complete now: the inbox leaves their tasks out (counting the
# held ones apart) and their reminders wait. Ended instances have no open tasks left.
HELD = (InstanceStatus.suspended, InstanceStatus.error)


class TaskStatus(StrEnum):
    open = "open"
    completed = "completed"
    cancelled = "cancelled"


DECISION_LABELS = {"approve": "通过", "return": "退回修改", "reject": "驳回"}


class ProcessVersion(Base):
    __tablename__ = "process_version"
    __table_args__ = (UniqueConstraint("process_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Deferred: read only when a version's spec is not cached yet, not with every instance.
    bpmn: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict[str, Any]] = mapped_column(JSONType, deferred=True)
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    note: Mapped[str | None] = mapped_column(Text)
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Retired by a process administrator (a bad deploy): new instances start on the newest version not
    # retired; instances already on it stay there until moved.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessInstance(Base):
    __tablename__ = "process_instance"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(20), default=InstanceStatus.running, index=True)
    state: Mapped[str] = mapped_column(Text, default="{}")
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None]
    subject_label: Mapped[str | None] = mapped_column(String(100))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optimistic lock: a stale write (two units of work on one instance) fails instead of winning.
    version_id: Mapped[int] = mapped_column(default=1)

    version: Mapped[ProcessVersion] = relationship()
    org_unit: Mapped[OrgUnit] = relationship()
    started_by: Mapped[User | None] = relationship()

    __mapper_args__ = {"version_id_col": version_id}


Index("ix_process_instance_subject", ProcessInstance.subject_type, ProcessInstance.subject_id)


class HumanTask(Base):
    """The inbox: one row per user task that is or was ready; the inbox never reads workflow state."""

    __tablename__ = "human_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36), unique=True)
    process_id: Mapped[str] = mapped_column(String(80))
    task_id: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(String(200))
    form: Mapped[str | None] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(40))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.open, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    overdue: Mapped[bool] = mapped_column(default=False)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(40))
    comment: Mapped[str | None] = mapped_column(Text)

    # Loaded when used (often from the identity map); lists ask for them with eager options.
    instance: Mapped[ProcessInstance] = relationship()
    org_unit: Mapped[OrgUnit] = relationship()
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])


class InstanceTimer(Base):
    """The next timer due time of each waiting instance: the database, not the broker, is the truth."""

    __tablename__ = "instance_timer"

    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# Parsed specs by sha256: restoring against an in-memory spec, not rebuilding it per load,
# is what takes the engine from ~206 to ~323 instances/s (DESIGN.md, engine facts).
_definitions: dict[str, engine_definitions.Definition] = {}


def definition_of(version: ProcessVersion) -> engine_definitions.Definition:
    cached = _definitions.get(version.sha256)
    if cached is None:
        cached = engine_definitions.load_definition(version.bpmn.encode("utf-8"), version.forms)
        _definitions[version.sha256] = cached
    return cached


# And by version row, per database: an instance then needs no join to find its spec.
_definitions_by_row: dict[tuple[str, int], engine_definitions.Definition] = {}


def definition_of_instance(session: Session, instance: "ProcessInstance") -> engine_definitions.Definition:
    key = (str(session.get_bind().engine.url), instance.process_version_id)
    cached = _definitions_by_row.get(key)
    if cached is None:
        cached = _definitions_by_row[key] = definition_of(instance.version)
    return cached


_task_forms: dict[tuple[str, str], dict[str, Any] | None] = {}


def _form_of(definition: engine_definitions.Definition, task_id: str) -> dict[str, Any] | None:
    """The schema a task accepts, built once per version and task: one object, so its validator is reused."""
    key = (definition.sha256, task_id)
    if key not in _task_forms:
        _task_forms[key] = engine_forms.task_form(definition, task_id)
    return _task_forms[key]


# --- deploying -------------------------------------------------------------------------------

def deploy(session: Session, *, bpmn: bytes, forms: dict[str, dict], by: User | None = None,
           note: str | None = None) -> ProcessVersion:
    """An immutable version per distinct BPMN + forms; deploying the same content again is a no-op."""
    try:
        definition = engine_definitions.load_definition(bpmn, forms)
    except DefinitionError as err:
        raise RuleViolation(msg("流程定义无效：{problems}", problems=join_messages(e["message"] for e in err.errors)),
                            details=err.errors) from err
    unknown = sorted({t.lane for t in definition.user_tasks.values() if t.lane and t.lane not in Role.__members__})
    if unknown:
        raise RuleViolation(msg("泳道名称不是已知角色：{lanes}", lanes=", ".join(unknown)),
                            details=[{"element_id": None, "message": f"unknown role {lane}"} for lane in unknown])
    existing = session.scalars(select(ProcessVersion).where(ProcessVersion.sha256 == definition.sha256)).one_or_none()
    if existing is not None:
        return existing
    number = (session.scalar(select(func.max(ProcessVersion.version))
                             .where(ProcessVersion.process_id == definition.process_id)) or 0) + 1
    version = ProcessVersion(process_id=definition.process_id, version=number, name=definition.name,
                             sha256=definition.sha256, bpmn=bpmn.decode("utf-8"), forms=definition.forms,
                             spec_json=definition.spec_json(), note=note, deployed_by_id=by.id if by else None)
    # Two administrators deploying at once both compute the same next number: the unique
    # (process_id, version) constraint refuses the second, which then gets a clear 409, not a 500.
    try:
        with session.begin_nested():
            session.add(version)
            session.flush()
    except IntegrityError as err:
        raise Conflict(msg("流程 {process_id} 刚刚被他人部署了新版本，请刷新后重新部署",
                           process_id=definition.process_id)) from err
    # On SQLite a rolled-back version's row id is used again: whatever was cached for that id is stale.
    _definitions_by_row.pop((str(session.get_bind().engine.url), version.id), None)
    _definitions[definition.sha256] = definition
    record(session, actor=by, action="process.deploy", object_type="process_version", object_id=version.id,
           after={"process_id": version.process_id, "version": number, "sha256": version.sha256}, reason=note)
    return version


def deploy_directory(session: Session, path: Path, *, by: User | None = None) -> list[ProcessVersion]:
    return [deploy(session, bpmn=bpmn, forms=forms, by=by, note=f"{stem}.bpmn")
            for stem, bpmn, forms in engine_definitions.read_process_dir(path)]


_LATEST_VERSION = (select(ProcessVersion).where(ProcessVersion.process_id == bindparam("process_id"),
                                                 ProcessVersion.retired_at.is_(None))
                   .order_by(ProcessVersion.version.desc()).limit(1))


def latest_version(session: Session, process_id: str) -> ProcessVersion:
    version = session.scalars(_LATEST_VERSION, {"process_id": process_id}).one_or_none()
    if version is None:
        raise NotFound(msg("找不到流程 {process_id}", process_id=process_id))
    return version


def deployed_forms(session: Session) -> dict[str, dict]:
    """Every form of the latest version of each process, by name: what a new definition may reference."""
    forms: dict[str, dict] = {}
    for process_id in session.scalars(select(ProcessVersion.process_id).distinct()):
        forms.update(latest_version(session, process_id).forms)
    return forms


def export_latest(session: Session, folder: Path) -> list[Path]:
    """The latest version of every process as files: <process_id>.bpmn and forms/<name>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "forms").mkdir(exist_ok=True)
    written = []
    for process_id in session.scalars(select(ProcessVersion.process_id).distinct().order_by(ProcessVersion.process_id)):
        version = latest_version(session, process_id)
        path = folder / f"{process_id}.bpmn"
        path.write_text(version.bpmn, encoding="utf-8")
        written.append(path)
        for name, schema in version.forms.items():
            form_path = folder / "forms" / f"{name}.json"
            form_path.write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            written.append(form_path)
    return written


# --- one unit of work ------------------------------------------------------------------------

def _services(ctx: ServiceContext) -> dict[str, Any]:
    return {name: (lambda params, fn=fn: fn(ctx, params)) for name, fn in SERVICES.items()}


def _lock(session: Session, instance_id: int) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id, with_for_update={"of": ProcessInstance},
                           populate_existing=True)
    if instance is None:
        raise NotFound(msg("找不到流程实例 {instance_id}", instance_id=instance_id))
    return instance


# The statements of every action, built once (constructing them cost more than running them).
_OPEN_TASKS = (select(HumanTask.id, HumanTask.task_guid, HumanTask.task_id, HumanTask.due_at)
               .where(HumanTask.instance_id == bindparam("instance_id"), HumanTask.status == TaskStatus.open))
_CANCEL_TASKS = (update(HumanTask.__table__).where(HumanTask.id.in_(bindparam("ids", expanding=True)))
                 .values(status=TaskStatus.cancelled))
_FLAG_OVERDUE = (update(HumanTask.__table__).where(HumanTask.id.in_(bindparam("ids", expanding=True)))
                 .values(overdue=True))
_INSERT_TASK = insert(HumanTask.__table__)
_INSERT_TIMER = insert(InstanceTimer.__table__)
# A task that opens with a due date gets its reminder row, due for a first look now (registry/reminders.py).
_SCHEDULE_REMINDERS = insert(TaskReminder.__table__).from_select(
    ["task_id", "next_at", "due_at"],
    select(HumanTask.id, bindparam("now", type_=UTCDateTime), HumanTask.due_at).where(
        HumanTask.instance_id == bindparam("instance_id"), HumanTask.task_guid.in_(bindparam("guids", expanding=True)),
        HumanTask.due_at.is_not(None)))
_DELETE_TIMER = delete(InstanceTimer.__table__).where(InstanceTimer.instance_id == bindparam("instance_id"))
_MOVE_TIMER = (update(InstanceTimer.__table__).where(InstanceTimer.instance_id == bindparam("timer_instance"))
               .values(due_at=bindparam("new_due_at")))
_LOCK_TASK = (select(HumanTask, ProcessInstance).join(ProcessInstance, HumanTask.instance_id == ProcessInstance.id)
              .where(HumanTask.id == bindparam("task_id")).with_for_update(of=ProcessInstance)
              .execution_options(populate_existing=True))


def _save(session: Session, instance: ProcessInstance, workflow: Any, ctx: ServiceContext) -> None:
    """Write the state and rebuild the instance's human_task and instance_timer rows from it.

    Plain statements rather than the unit of work: this runs in every action, and flushes were
    its largest cost (bench/RESULTS.md). The instance's version_id guards against a lost update.
    """
    conn = session.connection()
    definition = definition_of_instance(session, instance)
    values: dict[str, Any] = {"state": json.dumps(runtime.dump(workflow), ensure_ascii=False, separators=(",", ":")),
                              "version_id": instance.version_id + 1}
    if ctx.subject_label:
        values["subject_label"] = ctx.subject_label
    if runtime.is_finished(workflow):
        values.update(status=InstanceStatus.completed, ended_at=ctx.now)
    if not write_row(session, ProcessInstance, instance.id, values, guard={"version_id": instance.version_id}):
        raise Conflict(msg("数据已被他人同时修改，请刷新后重试"))

    ready = {t.guid: t for t in runtime.ready_tasks(workflow)}
    open_rows = [] if ctx.new_instance else conn.execute(_OPEN_TASKS, {"instance_id": instance.id}).all()
    # Gone without being completed through us: an interrupting event took it, or the instance ended.
    gone = [row.id for row in open_rows if row.task_guid not in ready]
    if gone:
        conn.execute(_CANCEL_TASKS, {"ids": gone})
    late = [row.id for row in open_rows if row.task_guid in ready and row.task_id in ctx.overdue_task_ids]
    if late:
        conn.execute(_FLAG_OVERDUE, {"ids": late})
    known = {row.task_guid for row in open_rows}
    undated: list[tuple[runtime.ReadyTask, working_days.CalendarNotCovered]] = []
    new_rows = []
    for guid, task in ready.items():
        if guid in known:
            continue
        new_rows.append({
            "instance_id": instance.id, "task_guid": guid, "process_id": instance.process_id,
            "task_id": task.task_id, "title": task.name, "form": task.form, "role": task.lane or "",
            "org_unit_id": _acting_unit_id(session, instance, task), "status": TaskStatus.open, "created_at": ctx.now,
            "due_at": _task_due(session, instance, definition, task, opened=ctx.now, undated=undated),
            "overdue": task.task_id in ctx.overdue_task_ids,
        })
    if new_rows:
        conn.execute(_INSERT_TASK, new_rows)
        with_due = [row["task_guid"] for row in new_rows if row["due_at"] is not None]
        if with_due:
            conn.execute(_SCHEDULE_REMINDERS, {"instance_id": instance.id, "guids": with_due, "now": ctx.now})

    due = runtime.next_timer_due(workflow)
    if due is None:
        if not ctx.new_instance:
            conn.execute(_DELETE_TIMER, {"instance_id": instance.id})
    elif ctx.new_instance or not conn.execute(_MOVE_TIMER, {"timer_instance": instance.id, "new_due_at": due}).rowcount:
        conn.execute(_INSERT_TIMER, {"instance_id": instance.id, "due_at": due})
    stale = session.identity_map.get(identity_key(InstanceTimer, instance.id))
    if stale is not None:
        session.expunge(stale)
    _date_again(session, instance, definition, ready, open_rows, ctx, undated)
    if undated:
        _hold_undated(session, instance, undated, ctx)


def _acting_unit_id(session: Session, instance: ProcessInstance, task: runtime.ReadyTask) -> int:
    """The instance's own org unit, unless the task names another from its data (a transfer's receiving school)."""
    if task.org_unit is None:
        return instance.org_unit_id
    unit = find_org_unit(session, code=task.org_unit)
    if unit is None:
        raise Conflict(msg("流程环节“{element}”的办理单位 {org_unit} 不存在，请联系流程管理员",
                           element=task.name, org_unit=task.org_unit),
                       details=[{"element_id": task.task_id, "message": msg("办理单位不存在")}])
    return unit.id


def _engine_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except TaskNotReady as err:
        raise InvalidTransition(msg("任务已完成或不可办理")) from err
    except EngineError as err:
        # A registry action refused inside a service task: its own error (409, 422, ...) is the answer.
        if isinstance(err.__cause__, DomainError):
            raise err.__cause__ from err
        # Anything else is the process definition's fault; the transaction rolls back, nothing is half-done.
        raise Conflict(msg("流程执行出错（{element}），请联系流程管理员：{message}",
                           element=err.element_id or msg("未知环节"), message=err.message)) from err


def _working_days(session: Session, instance: ProcessInstance, due: str) -> Callable[[date], bool] | None:
    """The county's working-day test, for a `due` counted in working days (`P5WD`) only."""
    if not isinstance(parse_due(due), WorkingDays):
        return None
    return working_days.calendar_of(session, county_of(session, instance.org_unit)).is_working


def _task_due(session: Session, instance: ProcessInstance, definition: engine_definitions.Definition,
              task: runtime.ReadyTask, *, opened: datetime,
              undated: list[tuple[runtime.ReadyTask, working_days.CalendarNotCovered]]) -> datetime | None:
    """When a task opened at `opened` is due: None without a `due`, and None (the task and the error added
    to `undated`) when its working days reach a year the calendar lacks: no guessed deadline."""
    due = _due_of(definition, task)
    if not due:
        return None
    info = definition.user_tasks.get(task.task_id)
    try:
        return due_at(_due_anchor(task, info) or opened, due, local_zone(), _working_days(session, instance, due))
    except working_days.CalendarNotCovered as err:
        undated.append((task, err))
        return None


def _due_of(definition: engine_definitions.Definition, task: runtime.ReadyTask) -> str | None:
    info = definition.user_tasks.get(task.task_id)
    return info.due if info else task.due


_UNDATED = (select(HumanTask.id, HumanTask.task_guid, HumanTask.created_at)
            .join(TaskReminder, TaskReminder.task_id == HumanTask.id)
            .where(HumanTask.id.in_(bindparam("ids", expanding=True)), TaskReminder.error.is_not(None)))


def _date_again(session: Session, instance: ProcessInstance, definition: engine_definitions.Definition,
                ready: dict[str, runtime.ReadyTask], open_rows: Any, ctx: ServiceContext,
                undated: list[tuple[runtime.ReadyTask, working_days.CalendarNotCovered]]) -> None:
    """Open tasks left without a due date by a missing calendar year (`_hold_undated`) get it now, counted
    from when they opened, if the calendar has the year by now (a process administrator's retry)."""
    ids = [row.id for row in open_rows if row.due_at is None and row.task_guid in ready
           and _due_of(definition, ready[row.task_guid])]
    if not ids:  # every action comes here: no query unless a task should have a due date and has none
        return
    rows = session.connection().execute(_UNDATED, {"ids": ids}).all()
    for row in rows:
        found = _task_due(session, instance, definition, ready[row.task_guid], opened=row.created_at,
                          undated=undated)
        if found is not None:
            write_row(session, HumanTask, row.id, {"due_at": found})
            write_row(session, TaskReminder, row.id, {"due_at": found, "next_at": ctx.now, "error": None})


def _hold_undated(session: Session, instance: ProcessInstance,
                  undated: list[tuple[runtime.ReadyTask, working_days.CalendarNotCovered]], ctx: ServiceContext) -> None:
    """Due dates the working-day calendar cannot give (a year neither chinese-calendar nor the county has
    entered): fail loudly, never retried silently. Each task is open without a due date, the error kept on its
    reminder row, where county_admin reads it as the reminders' own calendar errors (/notifications/outbox);
    the instance stops in status error, so that nobody works to a deadline nobody knows, the timer poll does
    not retry it every few seconds, and the process administrators are told. Once the calendar has the
    year, their retry gives each task its due date (`_date_again`) and the instance runs on."""
    conn = session.connection()
    ids = dict(conn.execute(select(HumanTask.task_guid, HumanTask.id).where(
        HumanTask.instance_id == instance.id, HumanTask.task_guid.in_([task.guid for task, _ in undated]))).all())
    for task, err in undated:
        # No schedule without a due date: next_at None keeps the scan away; due_at is only the opening.
        values = {"next_at": None, "due_at": ctx.now, "error": err.message}
        if not write_row(session, TaskReminder, ids[task.guid], values):
            conn.execute(insert(TaskReminder.__table__), {"task_id": ids[task.guid], **values})
    task, err = undated[0]
    mark_error(session, instance, element_id=task.task_id, message=err.message, now=ctx.now,
               remedy="待县教育局系统管理员在“工作日历”中录入该年的工作日后重试（无需修改流程定义）")
    ctx.warnings.append(Finding("", "due_not_computed", msg(
        "您的办理已记录；但下一环节“{element}”的截止时间无法计算：{message}。流程暂停在该环节，"
        "待县教育局系统管理员补录工作日历、流程管理员重试后继续，您无需重新办理。",
        element=task.name, message=err.message), "warning"))


def _due_anchor(task: runtime.ReadyTask, info: engine_definitions.UserTaskInfo | None) -> datetime | None:
    """The date a task's `due` counts from when its definition names one (`due_from`); a day is taken
    at its start in the county's time. A missing or unreadable value counts from the task's opening."""
    value = task.data.get(info.due_from) if info is not None and info.due_from else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=local_zone())


def start_process(session: Session, *, actor: User, process_id: str, data: dict[str, Any],
                  now: datetime | None = None, org_unit: str | None = None) -> tuple[ProcessInstance, list[Finding]]:
    """Start the latest version; returns the instance and the validation warnings to show. A process no flow
    module names starts by the generic rule (registry/actions.py generic_plan), where `org_unit` (a code)
    chooses the unit; a registered starter takes the unit from its data."""
    now = now or utcnow()
    version = latest_version(session, process_id)
    definition = definition_of(version)
    starter = starter_for(process_id)
    if starter is None:
        plan = generic_plan(session, actor=actor, definition=definition, data=data, org_unit=org_unit)
    elif org_unit:
        raise RuleViolation(msg("办理单位：此流程的办理单位由发起数据决定，不能另行指定"),
                            details=[{"field": "org_unit", "message": msg("不能指定")}])
    else:
        plan = starter(session, actor=actor, data=data, forms=definition.forms, today=now.date())
    if not holds(actor, plan.role, plan.org_unit):
        raise PermissionDenied(msg("只有{org_unit}的{role}可以发起此流程", org_unit=plan.org_unit.name,
                                   role=msg(ROLE_LABELS[Role(plan.role)])))
    return _start(session, version, definition, plan, actor=actor, now=now), plan.warnings


def start_by_system(session: Session, *, process_id: str, plan: StartPlan, now: datetime | None = None) -> ProcessInstance:
    """Start the latest version for a process nobody starts by hand (the autumn cycle's beat):
    the caller made the subject and `plan`; the audit entry names no actor."""
    version = latest_version(session, process_id)
    return _start(session, version, definition_of(version), plan, actor=None, now=now or utcnow())


def _start(session: Session, version: ProcessVersion, definition: engine_definitions.Definition, plan: StartPlan, *,
           actor: User | None, now: datetime) -> ProcessInstance:
    instance = ProcessInstance(process_version_id=version.id, version=version, process_id=version.process_id,
                               subject_type=plan.subject_type, subject_id=plan.subject_id,
                               subject_label=plan.subject_label, org_unit_id=plan.org_unit.id,
                               org_unit=plan.org_unit, started_by_id=actor.id if actor else None, started_at=now)
    session.add(instance)
    session.flush()
    ctx = ServiceContext(session=session, actor=actor, instance_id=instance.id, now=now, warnings=plan.warnings,
                         new_instance=True)
    workflow = _engine_call(runtime.start, definition, plan.data, services=_services(ctx), now=now)
    _save(session, instance, workflow, ctx)
    record(session, actor=actor, action="process.start", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id,
           after={"process_id": version.process_id, "version": version.version, "subject_id": plan.subject_id,
                  **({"role": plan.role, "rule": "generic", "data": plan.data} if plan.generic else {})})
    return instance


@dataclass(frozen=True)
class Startable:
    process_id: str
    name: str
    role: str
    units: list[OrgUnit]
    form: dict[str, Any] | None


def startable_processes(session: Session, *, actor: User) -> list[Startable]:
    """The processes without a registered starter that `actor` may start (their first step's role), with the
    units to choose from and the start form: what the 发起流程 page lists."""
    found = []
    for process_id in session.scalars(select(ProcessVersion.process_id).distinct().order_by(ProcessVersion.process_id)):
        if process_id in REGISTERED:
            continue
        try:
            definition = definition_of(latest_version(session, process_id))
        except NotFound:  # every version retired
            continue
        role = starting_role(definition)
        units = starting_units(session, actor=actor, role=role) if role else []
        if units:
            form = definition.forms[definition.start_form] if definition.start_form else None
            found.append(Startable(process_id, definition.name, role or "", units, form))
    return found


def _visible_task(session: Session, actor: User, task_id: int) -> HumanTask:
    """A task is visible to holders of its role at or above its org unit, to the county roles that
    oversee it, and to whoever completed it; to anyone else it does not exist."""
    task = session.get(HumanTask, task_id)
    if task is None or not (holds(actor, task.role, task.org_unit) or oversees(actor, task.org_unit)
                            or task.completed_by_id == actor.id):
        raise NotFound(msg("找不到任务 {task_id}", task_id=task_id))
    return task


def check_may_act(actor: User, task: HumanTask) -> None:
    """Seeing a task is not acting on it: county roles oversee tasks they do not hold."""
    if not holds(actor, task.role, task.org_unit):
        raise PermissionDenied(msg("此任务由{role}办理，您只能查看", role=msg(ROLE_LABELS[Role(task.role)])))
    if task.status != TaskStatus.open:
        raise InvalidTransition(msg("任务已完成或已取消"))


def claim_task(session: Session, *, actor: User, task_id: int) -> HumanTask:
    task = _visible_task(session, actor, task_id)
    check_may_act(actor, task)
    if task.claimed_by_id not in (None, actor.id):
        raise Conflict(msg("任务已被 {name} 认领",
                           name=task.claimed_by.display_name if task.claimed_by else msg("他人")))
    task.claimed_by_id = actor.id
    record(session, actor=actor, action="task.claim", object_type="human_task", object_id=task.id,
           org_unit_id=task.org_unit_id, instance_id=task.instance_id)
    return task


def unclaim_task(session: Session, *, actor: User, task_id: int) -> HumanTask:
    task = _visible_task(session, actor, task_id)
    if task.status != TaskStatus.open or task.claimed_by_id != actor.id:
        raise InvalidTransition(msg("只能放弃自己认领的未完成任务"))
    task.claimed_by_id = None
    record(session, actor=actor, action="task.unclaim", object_type="human_task", object_id=task.id,
           org_unit_id=task.org_unit_id, instance_id=task.instance_id)
    return task


def complete_task(session: Session, *, actor: User, task_id: int, data: dict[str, Any],
                  now: datetime | None = None, files: FileStore | None = None) -> tuple[HumanTask, list[Finding]]:
    now = now or utcnow()
    task, instance = _lock_task(session, actor, task_id)
    if task.status != TaskStatus.open:
        raise InvalidTransition(msg("任务已完成或已取消，不能再次办理"))
    if instance.status == InstanceStatus.suspended:
        raise InvalidTransition(msg("流程已被流程管理员暂停，恢复后才能办理"))
    if instance.status != InstanceStatus.running:
        raise InvalidTransition(msg("流程已结束或出错，不能办理"))
    if task.claimed_by_id not in (None, actor.id):
        raise Conflict(msg("任务已被他人认领"))
    definition = definition_of_instance(session, instance)
    try:
        submission = engine_forms.submission(definition, task.task_id, data)
    except FormDataError as err:
        form = _form_of(definition, task.task_id)
        if form is not None:
            validate_form(form, data)  # the same check again, for Chinese messages naming each field
        raise RuleViolation(err.message, details=[{"field": e["path"].strip("/").replace("/", "."),
                                                   "message": e["message"]} for e in err.errors]) from err
    ctx = ServiceContext(session=session, actor=actor, instance_id=instance.id, now=now, files=files)
    workflow = runtime.restore(definition, json.loads(instance.state), services=_services(ctx))
    task_data = _task_data(workflow, task.task_guid)  # raises 409 when the state says it is done
    if submission.action:
        TASK_ACTIONS[submission.action](ctx, task_data, submission.action_input or {})
    _engine_call(runtime.record_completion, workflow, task.task_guid, data, services=_services(ctx), now=now,
                 checked=submission)
    failure = _advance_after_completion(session, workflow, ctx)
    if failure is not None:
        # The user's step stands; the automatic steps after it are undone and wait for the fix:
        # the state as it was, with this completion recorded again (deterministic) and nothing run after it.
        workflow = runtime.restore(definition, json.loads(instance.state), services=_services(ctx))
        _engine_call(runtime.record_completion, workflow, task.task_guid, data, services=_services(ctx), now=now,
                     checked=submission)
    write_row(session, HumanTask, task.id, {
        "status": TaskStatus.completed, "completed_by_id": actor.id, "completed_at": now,
        "claimed_by_id": task.claimed_by_id or actor.id, "outcome": data.get("decision") or "submitted",
        "comment": data.get("comment") or None})
    drafts.drop(session, task_id=task.id)
    _save(session, instance, workflow, ctx)
    record(session, actor=actor, action="task.complete", object_type="human_task", object_id=task.id,
           org_unit_id=task.org_unit_id, instance_id=instance.id,
           after={"task_id": task.task_id, "outcome": task.outcome}, reason=task.comment)
    if failure is not None:
        name = element_name(definition, failure.element_id)
        mark_error(session, instance, element_id=failure.element_id, message=failure.message, now=now,
                   task_id=task.id)
        ctx.warnings.append(Finding("", "next_step_failed", next_step_failed(name), "warning"))
    return task, ctx.warnings


def next_step_failed(element: str) -> str:
    """What the user who completed a task is told when the automatic step after it failed (page and API)."""
    return msg("您的办理已记录；但其后的自动环节“{element}”执行失败，流程暂停在该环节。"
               "已通知流程管理员处理，修复后流程将继续，您无需重新办理。", element=element)


def completion_failure(session: Session, *, actor: User) -> str | None:
    """`next_step_failed`, when the actor's latest completion is the one an automatic step failed after and the
    instance still waits in error: the page the completion redirects to says so."""
    task = session.scalars(select(HumanTask).where(HumanTask.completed_by_id == actor.id)
                           .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1)).first()
    if task is None or task.instance.status != InstanceStatus.error:
        return None
    entry = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == task.instance_id,
                                                     AuditEntry.action == "process.error")
                            .order_by(AuditEntry.id.desc()).limit(1)).first()
    if entry is None or (entry.after or {}).get("task_id") != task.id:
        return None
    return next_step_failed((entry.after or {}).get("element_name") or msg("未知环节"))


def element_name(definition: engine_definitions.Definition, element_id: str | None) -> str:
    return engine_steps.element_name(definition, element_id) if element_id else msg("未知环节")


def _advance_after_completion(session: Session, workflow: Any, ctx: ServiceContext) -> EngineError | None:
    """Run the automatic steps after a completion on a savepoint. A registry action's refusal is the
    user's answer (their data broke a rule: nothing is kept); any other failure is the definition's
    fault and is returned, with whatever those steps wrote undone."""
    kept = (set(ctx.overdue_task_ids), ctx.subject_label, len(ctx.warnings))
    try:
        with session.begin_nested():
            runtime.advance(workflow, services=_services(ctx), now=ctx.now)
    except EngineError as err:
        if isinstance(err.__cause__, DomainError):
            raise err.__cause__ from err
        ctx.overdue_task_ids, ctx.subject_label = kept[0], kept[1]
        del ctx.warnings[kept[2]:]
        return err
    return None


def _lock_task(session: Session, actor: User, task_id: int) -> tuple[HumanTask, ProcessInstance]:
    """The task and its instance in one statement, the instance row locked.

    On PostgreSQL a statement that waited for the lock returns the instance as committed by the
    transaction it waited for, but may return the task row as it was before; the restored state
    is therefore the authority: a task completed meanwhile is no longer READY there (409).
    """
    row = session.execute(_LOCK_TASK, {"task_id": task_id}).first()
    if row is None or not holds(actor, row[0].role, row[0].org_unit):
        raise NotFound(msg("找不到任务 {task_id}", task_id=task_id))
    return row[0], row[1]


def _task_data(workflow: Any, guid: str) -> dict[str, Any]:
    try:
        return runtime.ready_task_data(workflow, guid)
    except TaskNotReady as err:
        raise InvalidTransition(msg("任务已完成或不可办理")) from err


def advance_instance(session: Session, *, instance_id: int, now: datetime | None = None) -> ProcessInstance:
    """Fire whatever timers are due and move on; firing twice changes nothing the second time."""
    now = now or utcnow()
    instance = _lock(session, instance_id)
    if instance.status != InstanceStatus.running:
        session.connection().execute(_DELETE_TIMER, {"instance_id": instance.id})
        return instance
    definition = definition_of_instance(session, instance)
    ctx = ServiceContext(session=session, actor=None, instance_id=instance.id, now=now)
    workflow = runtime.restore(definition, json.loads(instance.state), services=_services(ctx))
    try:
        # A savepoint: what a service task wrote before a later step failed is undone with it.
        with session.begin_nested():
            runtime.advance(workflow, services=_services(ctx), now=now)
    except EngineError as err:
        if isinstance(err.__cause__, DomainError):
            raise err.__cause__ from err
        # No user is waiting on a timer: the instance stops in status error, its state as it was
        # before the timer, until a process administrator fixes the definition and retries it.
        mark_error(session, instance, element_id=err.element_id, message=err.message, now=now)
        return instance
    _save(session, instance, workflow, ctx)
    record(session, actor=None, action="process.timer", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id, after={"now": now.isoformat()})
    return instance


def lock_instance(session: Session, instance_id: int) -> ProcessInstance:
    """The instance row, locked for this transaction (another unit of work on it waits or fails)."""
    return _lock(session, instance_id)


def set_status(session: Session, instance: ProcessInstance, status: str) -> None:
    if not write_row(session, ProcessInstance, instance.id, {"status": status, "version_id": instance.version_id + 1},
                     guard={"version_id": instance.version_id}):
        raise Conflict(msg("数据已被他人同时修改，请刷新后重试"))


def save_state(session: Session, instance: ProcessInstance, workflow: Any, *, actor: User | None,
               now: datetime) -> None:
    """Write a workflow an administrator changed (moved to another version, cancelled) and rebuild
    its inbox and timer rows, as every unit of work does."""
    _save(session, instance, workflow, ServiceContext(session=session, actor=actor, instance_id=instance.id, now=now))


def mark_error(session: Session, instance: ProcessInstance, *, element_id: str | None, message: str,
               now: datetime, task_id: int | None = None, remedy: str | None = None) -> None:
    """Stop the instance in status error (a script or service task failed): its timers and its tasks'
    reminders wait, and the process administrators over it are told, with `remedy` when the fix is not
    theirs to make in the definition. `task_id`: the task whose completion ran into the failure, if a
    person's completion did."""
    before = instance.status
    if not write_row(session, ProcessInstance, instance.id, {"status": InstanceStatus.error,
                                                             "version_id": instance.version_id + 1},
                     guard={"version_id": instance.version_id}):
        raise Conflict(msg("数据已被他人同时修改，请刷新后重试"))
    session.connection().execute(_DELETE_TIMER, {"instance_id": instance.id})
    hold_reminders(session, instance_id=instance.id)
    definition = definition_of_instance(session, instance)
    name = element_name(definition, element_id)
    after = {"element_id": element_id, "element_name": name, "message": message, "at": now.isoformat()}
    if task_id is not None:
        after["task_id"] = task_id
    record(session, actor=None, action="process.error", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id, before={"status": before}, after=after)
    notifications.notify_process_error(session, instance_id=instance.id, element=name, message=message, now=now,
                                       remedy=remedy)


def withdraw(session: Session, *, actor: User, instance_id: int, reason: str,
             now: datetime | None = None) -> ProcessInstance:
    """撤回: the initiator takes a submission back while nobody after them has acted on it yet
    (no task completed or claimed). The subject goes back to where it was before the start."""
    now = now or utcnow()
    instance = _lock(session, instance_id)
    if not _sees_instance(session, actor, instance):
        raise NotFound(msg("找不到流程实例 {instance_id}", instance_id=instance_id))
    refusal = _withdraw_refusal(session, actor, instance)
    if refusal is not None:
        raise refusal
    if not reason or not reason.strip():
        raise RuleViolation(msg("撤回原因：必填"), details=[{"field": "reason", "message": msg("必填")}])
    definition = definition_of_instance(session, instance)
    ctx = ServiceContext(session=session, actor=actor, instance_id=instance.id, now=now)
    workflow = runtime.restore(definition, json.loads(instance.state), services=_services(ctx))
    runtime.cancel(workflow)
    undo = WITHDRAWALS.get(instance.process_id)
    if undo is not None and instance.subject_id is not None:
        undo(ctx, instance.subject_id, reason.strip())
    _save(session, instance, workflow, ctx)
    write_row(session, ProcessInstance, instance.id, {"status": InstanceStatus.withdrawn, "ended_at": now})
    record(session, actor=actor, action="process.withdraw", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id, reason=reason.strip(),
           before={"status": InstanceStatus.running}, after={"status": InstanceStatus.withdrawn})
    return instance


def _withdraw_refusal(session: Session, actor: User, instance: ProcessInstance) -> DomainError | None:
    """Why `actor` may not withdraw `instance` now, or None: one set of rules for doing it and for offering it."""
    if instance.started_by_id != actor.id:
        return PermissionDenied(msg("只有发起人可以撤回"))
    if instance.status != InstanceStatus.running:
        return InvalidTransition(msg("流程已结束，不能撤回"))
    # The initiator's own first step (上传申请书 of key_field_change) is not someone after them acting.
    acted = session.scalar(select(func.count()).select_from(HumanTask).where(
        HumanTask.instance_id == instance.id,
        ((HumanTask.status == TaskStatus.completed) & (HumanTask.completed_by_id != actor.id))
        | (HumanTask.claimed_by_id.is_not(None) & (HumanTask.claimed_by_id != actor.id))))
    if acted:
        return InvalidTransition(msg("下一环节已开始办理（已认领或已办理），不能撤回；请联系办理人退回"))
    return None


def may_withdraw(session: Session, *, actor: User, instance: ProcessInstance) -> bool:
    """Whether to offer 撤回: the rules of `withdraw`, without the lock (withdrawing checks them again)."""
    return sees(actor, instance.org_unit) and _withdraw_refusal(session, actor, instance) is None


def claim_due_instance(session: Session, *, now: datetime, skip: set[int] = frozenset()) -> int | None:  # type: ignore[assignment]
    """The next instance whose timer is due, locked for this transaction; other pollers skip it."""
    query = select(InstanceTimer.instance_id).where(InstanceTimer.due_at <= now)
    if skip:
        query = query.where(InstanceTimer.instance_id.not_in(skip))
    query = query.order_by(InstanceTimer.due_at).limit(1)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


# --- reading ---------------------------------------------------------------------------------

TASK_LIST_LOADS = (joinedload(HumanTask.org_unit), joinedload(HumanTask.instance), joinedload(HumanTask.claimed_by))


def list_tasks(session: Session, *, actor: User, status: str = TaskStatus.open, overdue: bool | None = None,
               limit: int = 100, offset: int = 0) -> tuple[list[HumanTask], int]:
    """Open tasks whose role the caller holds at or above the task's org unit."""
    clauses = [scope_clause(actor, OrgUnit.path, roles=[r]) & (HumanTask.role == r)
               for r in {g.role for g in actor.grants}]
    if not clauses:
        return [], 0
    query = (select(HumanTask).join(OrgUnit, HumanTask.org_unit_id == OrgUnit.id)
             .where(or_(*clauses), HumanTask.status == status))
    if overdue is not None:
        query = query.where(HumanTask.overdue.is_(overdue))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.options(*TASK_LIST_LOADS)
                           .order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
                           .limit(limit).offset(offset)).unique().all()
    return list(rows), total


def get_task(session: Session, *, actor: User, task_id: int) -> HumanTask:
    return _visible_task(session, actor, task_id)


def task_form(session: Session, task: HumanTask) -> dict[str, Any] | None:
    return _form_of(definition_of_instance(session, task.instance), task.task_id)


def task_actions(form: dict[str, Any] | None) -> list[dict[str, str]]:
    decision = ((form or {}).get("properties") or {}).get("decision") or {}
    return [{"decision": value, "label": text} for value, text in choices(decision)]


def _ready_data(task: HumanTask) -> dict[str, Any]:
    instance = task.instance
    workflow = runtime.restore(definition_of_instance(object_session(task), instance), json.loads(instance.state),
                               services={})
    return _task_data(workflow, task.task_guid)


def task_view(session: Session, task: HumanTask) -> tuple[dict[str, Any], str]:
    """The open task's workflow data (ids and earlier decisions, never personal data) and its BPMN
    instructions rendered in the sandbox: one restore for both."""
    if task.status != TaskStatus.open:
        return {}, ""
    data = _ready_data(task)
    instructions = task_instructions.render(definition_of_instance(session, task.instance), task.task_id, data)
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool, type(None)))}, instructions


def get_instance(session: Session, *, actor: User, instance_id: int) -> ProcessInstance:
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or not _sees_instance(session, actor, instance):
        raise NotFound(msg("找不到流程实例 {instance_id}", instance_id=instance_id))
    return instance


def _sees_instance(session: Session, actor: User, instance: ProcessInstance) -> bool:
    """Whoever sees the instance's org unit, or the unit of one of its tasks: a transfer started by one
    school is the other school's business too once it has a step there; a third school never sees it."""
    if sees(actor, instance.org_unit):
        return True
    units = session.scalars(select(OrgUnit).join(HumanTask, HumanTask.org_unit_id == OrgUnit.id)
                            .where(HumanTask.instance_id == instance.id, HumanTask.org_unit_id != instance.org_unit_id)
                            .distinct())
    return any(sees(actor, unit) for unit in units)


def instance_for(session: Session, *, subject_type: str, subject_id: int) -> ProcessInstance | None:
    """The latest instance about one subject (a student, an import batch)."""
    return session.scalars(select(ProcessInstance).where(ProcessInstance.subject_type == subject_type,
                                                         ProcessInstance.subject_id == subject_id)
                           .order_by(ProcessInstance.id.desc()).limit(1)).first()


def instances_about(session: Session, *, actor: User, subject_type: str, subject_id: int) -> list[ProcessInstance]:
    """Every instance about one subject that the caller may see, newest first."""
    rows = session.scalars(select(ProcessInstance).where(ProcessInstance.subject_type == subject_type,
                                                         ProcessInstance.subject_id == subject_id)
                           .options(joinedload(ProcessInstance.version), joinedload(ProcessInstance.org_unit))
                           .order_by(ProcessInstance.id.desc())).unique()
    return [i for i in rows if _sees_instance(session, actor, i)]


def open_requests_for_student(session: Session, *, student_id: int) -> list[ProcessInstance]:
    """The running instances about one student (a transfer, a change, a graduation list naming them):
    one at a time per student. The rule lives in registry/process_guards.py."""
    return process_guards.open_requests_for_student(session, student_id=student_id)


def instance_tasks(session: Session, instance: ProcessInstance) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id)
                                .options(*TASK_LIST_LOADS).order_by(HumanTask.id)).unique())


def instance_history(session: Session, instance: ProcessInstance) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance.id)
                                .order_by(AuditEntry.id)))
