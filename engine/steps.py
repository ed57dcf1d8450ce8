"""The steps of a process — its tasks — in the order a reader meets them along the flow, for the text
beside (or, with JavaScript off, instead of) its diagram."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptEngineTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.specs.base import TaskSpec

from engine.definitions import Definition


@dataclass(frozen=True)
class Step:
    id: str  # the BPMN element id
    name: str


def _is_step(spec: TaskSpec) -> bool:
    return getattr(spec, "bpmn_id", None) is not None and (
        spec.manual or isinstance(spec, ScriptEngineTask | SubWorkflowTask))


def _breadth_first(definition: Definition) -> Iterator[TaskSpec]:
    """Every task spec reachable from the start event, nearest first, each once."""
    seen: set[str] = set()
    queue: deque[TaskSpec] = deque([definition.spec.start])
    while queue:
        spec = queue.popleft()
        if spec.name not in seen:
            seen.add(spec.name)
            yield spec
            queue.extend(spec.outputs)


def process_steps(definition: Definition) -> list[Step]:
    """Breadth-first from the start event: the happy path comes before the branches that leave it later."""
    return [Step(spec.bpmn_id, spec.bpmn_name or spec.bpmn_id) for spec in _breadth_first(definition) if _is_step(spec)]


def element_name(definition: Definition, element_id: str) -> str:
    """The Chinese name of a BPMN element for a message (its id when it has none or is not found)."""
    for spec in (definition.spec, *definition.subprocess_specs.values()):
        for task_spec in spec.task_specs.values():
            if getattr(task_spec, "bpmn_id", None) == element_id:
                return task_spec.bpmn_name or element_id
    return element_id


def first_human_task(definition: Definition) -> str | None:
    """The id of the first user or manual task reached from the start event (breadth-first: the nearest),
    or None when no person ever acts: whoever holds its lane's role starts the process by hand."""
    return next((spec.bpmn_id for spec in _breadth_first(definition)
                 if spec.manual and getattr(spec, "bpmn_id", None) is not None), None)
