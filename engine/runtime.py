"""Running instances: start, restore, act, dump.

Every function that moves an instance takes the unit of work's `services` and `now`. If one raises,
the workflow object may be half-advanced: discard it (roll back) instead of dumping it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptEngineTask
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.definitions import Definition, UserTaskInfo
from engine.errors import EngineError, TaskNotReady
from engine.forms import Submission, check_submission
from engine.scripting import ScriptEngine, Services, element_id
from engine.serializer import dump_state, restore_state
from engine.task_data import plain_json
from engine.timers import timer_due
from engine.workflow import DefinedWorkflow

# A cycle timer whose start lies far in the past would otherwise fire once per missed period in one call.
_MAX_ENGINE_ROUNDS = 100
_DEFINITION_KEY = "definition_sha256"


@dataclass(frozen=True)
class ReadyTask:
    guid: str
    task_id: str
    name: str
    lane: str | None
    form: str | None
    due: str | None
    action: str | None
    data: dict
    org_unit: str | None = None  # the acting org unit's code when the task names one (`org_unit` property)


def start(definition: Definition, data: dict, *, services: Services, now: datetime) -> DefinedWorkflow:
    initial = plain_json(data, where="data")
    if not isinstance(initial, dict):
        raise EngineError("启动数据必须是 JSON 对象 / start data must be an object")
    workflow = DefinedWorkflow(definition.spec, dict(definition.subprocess_specs))
    workflow.definition = definition
    workflow.script_engine = ScriptEngine(services, _utc(now))
    workflow.task_tree.data.update(initial)
    _run_engine(workflow)
    return workflow


def restore(definition: Definition, state: Mapping[str, Any], *, services: Services) -> DefinedWorkflow:
    recorded = state.get(_DEFINITION_KEY) if isinstance(state, Mapping) else None
    if recorded != definition.sha256:
        raise EngineError(
            f"实例状态属于流程版本 {recorded}，而不是 {definition.sha256} / the state belongs to another process version",
            element_id=definition.process_id,
        )
    restorable = {key: value for key, value in state.items() if key != _DEFINITION_KEY}
    workflow = restore_state(restorable, definition.spec, definition.subprocess_specs)
    if any(task.task_spec is None for task in workflow.tasks.values()):
        raise EngineError("实例状态与流程定义不符 / the state does not match the definition", element_id=definition.process_id)
    workflow.definition = definition
    workflow.script_engine = ScriptEngine(services)
    return workflow


def dump(workflow: DefinedWorkflow) -> dict:
    state = dump_state(workflow)
    state[_DEFINITION_KEY] = workflow.definition.sha256
    return state


def ready_tasks(workflow: DefinedWorkflow) -> list[ReadyTask]:
    found = []
    for task in workflow.get_tasks(state=TaskState.READY, manual=True):
        info = _task_info(workflow, task)
        found.append(
            ReadyTask(
                guid=str(task.id),
                task_id=info.id,
                name=info.name,
                lane=_lane(workflow, task),
                form=info.form,
                due=info.due,
                action=info.action,
                # A copy of the top level: callers read it; nested values are plain JSON they must not change.
                data=dict(task.data),
                org_unit=_org_unit(workflow, task, info),
            )
        )
    return found


def _org_unit(workflow: DefinedWorkflow, task: Task, info: UserTaskInfo) -> str | None:
    if info.org_unit is None:
        return None
    value = workflow.script_engine.evaluate(task, info.org_unit)  # a failure is a ScriptError naming the task
    if not isinstance(value, str) or not value:
        raise EngineError(f"办理单位表达式 {info.org_unit!r} 应得到机构代码，实得 {value!r} / org_unit must give an org unit code",
                          element_id=info.id)
    return value


def ready_task_data(workflow: DefinedWorkflow, guid: str) -> dict:
    """The data of one READY user task, without walking the whole task tree; raises TaskNotReady."""
    return dict(_ready_human_task(workflow, guid).data)


def complete_task(
    workflow: DefinedWorkflow, guid: str, data: dict, *, services: Services, now: datetime,
    checked: Submission | None = None,
) -> None:
    """Complete a READY user task with the payload the user submitted (see `engine.forms` for its shape)
    and run the engine to the next wait state.

    `checked` is what `engine.forms.submission` returned for this same payload: the check is not repeated.
    """
    record_completion(workflow, guid, data, services=services, now=now, checked=checked)
    _run_engine(workflow)


def record_completion(
    workflow: DefinedWorkflow, guid: str, data: dict, *, services: Services, now: datetime,
    checked: Submission | None = None,
) -> None:
    """The user's part of `complete_task` alone: the task takes the payload and completes; the steps after
    it (scripts, service tasks, gateways) wait for `advance`. Deterministic for the same arguments, so
    a caller whose `advance` failed can restore the earlier state and record the completion again."""
    task = _ready_human_task(workflow, guid)
    info = _task_info(workflow, task)
    submission = checked or check_submission(
        task_id=info.id, form_name=info.form, action=info.action, forms=workflow.definition.forms, payload=data
    )
    moment = _utc(now)
    workflow.script_engine = ScriptEngine(services, moment)
    if info.form is not None and info.action is None:
        # The form's fields describe this submission only: a comment left by an earlier review must not linger.
        # A field left out takes the form's `default`, so that expressions after the task may name it.
        for field_name, field_schema in workflow.definition.forms[info.form].get("properties", {}).items():
            task.data.pop(field_name, None)
            if isinstance(field_schema, dict) and "default" in field_schema:
                task.data[field_name] = field_schema["default"]
    task.data.update(submission.workflow_data)
    task.internal_data["completed_at"] = moment.isoformat()
    recorded = {key: submission.workflow_data[key] for key in ("decision", "comment") if key in submission.workflow_data}
    if recorded:
        task.internal_data["recorded"] = recorded
    _guarded(task.run)


def advance(workflow: DefinedWorkflow, *, services: Services, now: datetime) -> None:
    workflow.script_engine = ScriptEngine(services, _utc(now))
    _run_engine(workflow)


def next_timer_due(workflow: DefinedWorkflow) -> datetime | None:
    dues = [
        due
        for task in workflow.event_manager.tasks.values()
        if task.state == TaskState.WAITING
        and isinstance(task.task_spec, CatchingEvent)
        and isinstance(task.task_spec.event_definition, TimerEventDefinition)
        and (due := timer_due(task)) is not None
    ]
    return min(dues, default=None)


def cancel(workflow: DefinedWorkflow) -> None:
    """Withdrawn by its initiator: every task not yet finished is cancelled and the workflow ends unsuccessfully."""
    workflow.cancel()


def is_finished(workflow: DefinedWorkflow) -> bool:
    return workflow.is_completed()


def history(workflow: DefinedWorkflow) -> list[dict]:
    """Completed user and service tasks in the order they completed, with what users recorded."""
    entries = []
    for task in workflow.get_tasks(state=TaskState.COMPLETED):
        spec = task.task_spec
        if not (spec.manual or isinstance(spec, ScriptEngineTask)) or getattr(spec, "bpmn_id", None) is None:
            continue
        entry = {
            "guid": str(task.id),
            "task_id": spec.bpmn_id,
            "name": spec.bpmn_name or spec.bpmn_id,
            "lane": _lane(workflow, task),
            "completed_at": task.internal_data.get("completed_at"),
            **task.internal_data.get("recorded", {}),
        }
        entries.append((entry["completed_at"] or "", task.last_state_change, entry))
    return [entry for _, _, entry in sorted(entries, key=lambda item: (item[0], item[1]))]


def _run_engine(workflow: DefinedWorkflow) -> None:
    moment = workflow.script_engine.now
    stamp = moment.isoformat() if moment is not None else None

    def stamp_completion(task: Task) -> None:
        if isinstance(task.task_spec, ScriptEngineTask) and stamp is not None:
            task.internal_data["completed_at"] = stamp

    def steps() -> None:
        workflow.refresh_timers()
        for _ in range(_MAX_ENGINE_ROUNDS):
            workflow.do_engine_steps(did_complete_task=stamp_completion)
            # do_engine_steps ends by refreshing timers; a timer that became due there still has to run.
            if not workflow.get_tasks(state=TaskState.READY, manual=False):
                return

    _guarded(steps)


def _guarded(action: Any) -> None:
    try:
        action()
    except EngineError:
        raise
    except SpiffWorkflowException as exc:
        raise EngineError(f"流程执行失败 / the engine failed: {exc}", element_id=_element_of(exc)) from exc


def _element_of(exc: SpiffWorkflowException) -> str | None:
    task = getattr(exc, "task", None)
    if task is not None:
        return element_id(task)
    spec = getattr(exc, "task_spec", None) if isinstance(exc, WorkflowException) else None
    return (getattr(spec, "bpmn_id", None) or getattr(spec, "name", None)) if spec is not None else None


def _ready_human_task(workflow: DefinedWorkflow, guid: str) -> Task:
    try:
        task = workflow.get_task_from_id(UUID(str(guid)))
    except (ValueError, SpiffWorkflowException):
        raise TaskNotReady(f"任务 {guid} 不存在 / no such task") from None
    if task.state != TaskState.READY or not task.task_spec.manual:
        state = TaskState.get_name(task.state)
        raise TaskNotReady(
            f"任务 {guid} 当前状态为 {state}，不能办理 / task is {state}, not READY", element_id=element_id(task)
        )
    return task


def _task_info(workflow: DefinedWorkflow, task: Task) -> UserTaskInfo:
    bpmn_id = element_id(task)
    info = workflow.definition.user_tasks.get(bpmn_id)
    if info is None:
        return UserTaskInfo(id=bpmn_id, name=task.task_spec.bpmn_name or bpmn_id, lane=None, form=None, due=None, action=None)
    return info


def _lane(workflow: DefinedWorkflow, task: Task) -> str | None:
    # Tasks of a called process carry no lane: the calling task's lane says who works on them.
    current: Task | None = task
    while current is not None:
        if current.task_spec.lane is not None:
            return current.task_spec.lane
        parent_id = current.workflow.parent_task_id
        current = workflow.get_task_from_id(parent_id) if parent_id is not None else None
    return None


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise EngineError("now 必须是带时区的 datetime / now must be a timezone-aware datetime")
    return now.astimezone(UTC)
