"""Two versions of one process compared element by element, and moving a running instance between them.

An element's fingerprint is its own XML (tag, attributes, extension properties, conditions, timer
expressions) plus the lane it sits in, without its `incoming`/`outgoing` references and without nested
flow elements: inserting a review step after a task changes that task's `outgoing` but not the task,
and the new step and flows show up as added elements of their own.

The migration rule (spiff-arena's): an instance may move when nothing it has already completed or
started was changed or removed, and the steps it waits in still exist as the same kind of element.
A step it waits in may have changed (a new due period, another form): it takes the new definition,
while timers already waiting keep the due times they got when they started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.util.task import TaskState

from engine.definition_checks import NS
from engine.definitions import Definition
from engine.errors import EngineError
from engine.runtime import restore
from engine.safe_xml import parse_bpmn_xml
from engine.workflow import DefinedWorkflow

_FLOW_REFS = {f"{{{NS['bpmn']}}}incoming", f"{{{NS['bpmn']}}}outgoing"}
_NOT_ELEMENTS = {f"{{{NS['bpmn']}}}{tag}" for tag in ("laneSet", "lane", "flowNodeRef", "childLaneSet",
                                                       "extensionElements", "documentation")}
_DONE = TaskState.COMPLETED | TaskState.STARTED | TaskState.ERROR
_WAITING_IN = TaskState.READY | TaskState.WAITING


@dataclass(frozen=True)
class Element:
    id: str
    kind: str  # the BPMN tag without namespace: userTask, sequenceFlow, …
    name: str
    fingerprint: str = field(repr=False)


@dataclass(frozen=True)
class VersionDiff:
    added: list[Element]
    removed: list[Element]
    changed: list[Element]  # as they are in the newer version

    def as_dict(self) -> dict[str, list[dict[str, str]]]:
        return {key: [{"id": e.id, "kind": e.kind, "name": e.name} for e in getattr(self, key)]
                for key in ("added", "removed", "changed")}


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


_CONTAINERS = {f"{{{NS['bpmn']}}}{tag}" for tag in ("process", "subProcess", "transaction", "adHocSubProcess")}


def _flow_elements(container: etree._Element) -> list[etree._Element]:
    """The flow elements directly inside a process or sub-process (tasks, events, gateways, flows):
    their event definitions, scripts and conditions are part of them, not elements of their own."""
    return [child for child in container if isinstance(child.tag, str) and child.get("id") is not None
            and child.tag not in _NOT_ELEMENTS and etree.QName(child.tag).namespace == NS["bpmn"]]


def _canonical(node: etree._Element) -> str:
    parts = [_local(node.tag), *(f"{k}={v}" for k, v in sorted(node.attrib.items()))]
    text = (node.text or "").strip()
    if text:
        parts.append(f"text={text}")
    nested = set(_flow_elements(node)) if node.tag in _CONTAINERS else set()
    for child in node:
        if not isinstance(child.tag, str) or child.tag in _FLOW_REFS or child in nested:
            continue
        parts.append(_canonical(child))
    return "<" + "|".join(parts) + ">"


def elements(bpmn: bytes) -> dict[str, Element]:
    """Every flow element of every process in the document (sub-processes included), by id."""
    root = parse_bpmn_xml(bpmn)
    lanes: dict[str, str] = {}
    for lane in root.iter(f"{{{NS['bpmn']}}}lane"):
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id") or ""
    found: dict[str, Element] = {}
    containers = list(root.iter(f"{{{NS['bpmn']}}}process"))
    while containers:
        container = containers.pop(0)
        for node in _flow_elements(container):
            element_id = node.get("id")
            found[element_id] = Element(element_id, _local(node.tag), node.get("name") or element_id,
                                        f"lane={lanes.get(element_id, '')}" + _canonical(node))
            if node.tag in _CONTAINERS:
                containers.append(node)
    return found


def diff(old_bpmn: bytes, new_bpmn: bytes) -> VersionDiff:
    old, new = elements(old_bpmn), elements(new_bpmn)
    return VersionDiff(
        added=[new[i] for i in new if i not in old],
        removed=[old[i] for i in old if i not in new],
        changed=[new[i] for i in new if i in old and old[i].fingerprint != new[i].fingerprint],
    )


@dataclass(frozen=True)
class Blocker:
    element_id: str | None
    message: str


def _all_tasks(workflow: DefinedWorkflow) -> list[Any]:
    tasks = list(workflow.tasks.values())
    for sub in workflow.subprocesses.values():
        tasks.extend(sub.tasks.values())
    return tasks


def _spec_names(definition: Definition) -> set[str]:
    names = set(definition.spec.task_specs)
    for sub in definition.subprocess_specs.values():
        names.update(sub.task_specs)
    return names


def blockers(state: Mapping[str, Any], old: Definition, new: Definition) -> list[Blocker]:
    """Why an instance in `state` (of version `old`) cannot move to `new`; empty when it can."""
    if old.process_id != new.process_id:
        return [Blocker(new.process_id, f"新版本属于另一个流程 {new.process_id}")]
    changes = diff(old.bpmn, new.bpmn)
    removed = {e.id: e for e in changes.removed}
    changed = {e.id: e for e in changes.changed}
    old_elements = elements(old.bpmn)
    new_elements = elements(new.bpmn)
    workflow = restore(old, state, services={})
    new_names = _spec_names(new)
    found: list[Blocker] = []
    seen: set[tuple[str, str]] = set()
    for task in _all_tasks(workflow):
        spec = task.task_spec
        bpmn_id = getattr(spec, "bpmn_id", None)
        if not task.has_state(_DONE | _WAITING_IN):
            continue
        name = (spec.bpmn_name or bpmn_id) if bpmn_id else spec.name
        if bpmn_id is None:
            if spec.name not in new_names and ("spec", spec.name) not in seen:
                seen.add(("spec", spec.name))
                found.append(Blocker(None, f"内部环节 {spec.name} 在新版本中不存在"))
            continue
        if task.has_state(_DONE):
            reason = "已办理" if task.has_state(TaskState.COMPLETED) else "正在执行"
            if bpmn_id in removed:
                found.append(Blocker(bpmn_id, f"环节「{name}」{reason}，但新版本删除了它"))
            elif bpmn_id in changed:
                found.append(Blocker(bpmn_id, f"环节「{name}」{reason}，但新版本修改了它"))
            else:
                continue
        elif bpmn_id in removed:
            found.append(Blocker(bpmn_id, f"实例停留在环节「{name}」，但新版本删除了它"))
        elif bpmn_id in old_elements and bpmn_id in new_elements \
                and old_elements[bpmn_id].kind != new_elements[bpmn_id].kind:
            found.append(Blocker(bpmn_id, f"实例停留在环节「{name}」，新版本把它改成了另一种环节"))
        else:
            continue
    unique: list[Blocker] = []
    for blocker in found:
        if blocker not in unique:
            unique.append(blocker)
    if unique:
        return unique
    try:
        migrate(state, old, new)
    except EngineError as exc:
        return [Blocker(exc.element_id, f"实例状态无法迁移：{exc.message}")]
    return []


def migrate(state: Mapping[str, Any], old: Definition, new: Definition) -> DefinedWorkflow:
    """The instance restored against `new`, its not-yet-reached steps predicted afresh from `new`'s flows.

    The caller has checked `blockers` first. Completed and waiting tasks keep their data and
    internal data (a waiting timer keeps the due time it was given)."""
    recorded = state.get("definition_sha256") if isinstance(state, Mapping) else None
    if recorded != old.sha256:
        raise EngineError("实例状态不属于当前版本 / the state belongs to another version", element_id=old.process_id)
    moved = {**state, "definition_sha256": new.sha256}
    workflow = restore(new, moved, services={})
    try:
        for sub in [workflow, *workflow.subprocesses.values()]:
            for task in list(sub.tasks.values()):
                if task.id not in sub.tasks or not task.has_state(_WAITING_IN):
                    continue
                for child in list(task.children):
                    if child.has_state(TaskState.PREDICTED_MASK | TaskState.FUTURE) and not child.triggered:
                        sub._remove_task(child.id)
                task._sync_children(task.task_spec.outputs, TaskState.FUTURE)
                for child in task.children:
                    child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
    except EngineError:
        raise
    except Exception as exc:  # Spiff refuses a tree it cannot rebuild: say so, do not half-migrate
        raise EngineError(f"实例状态无法按新版本重建 / cannot rebuild the state: {type(exc).__name__}: {exc}",
                          element_id=new.process_id) from exc
    return workflow
