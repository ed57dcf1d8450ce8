"""Instance state without its spec, and the spec on its own.

Spiff's stock workflow serialization embeds the spec and rebuilds it on every load; measured here
that rebuild is the largest cost per instance. The state converter below leaves the spec out and,
on restore, attaches the spec objects the caller already holds in memory.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.workflow import VERSION as SPIFF_FORMAT_VERSION
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.errors import EngineError
from engine.timers import CLOCKED_TIMERS
from engine.workflow import DefinedWorkflow

# Bumped whenever the shape of a dumped state changes in a way old rows need migrating for.
STATE_FORMAT = f"mealroll-1/spiff-{SPIFF_FORMAT_VERSION}"
_FORMAT_KEY = "format"


class SpeclessWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow: BpmnWorkflow) -> dict:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(
        self, dct: dict, spec: BpmnProcessSpec | None = None, subprocess_specs: Mapping[str, BpmnProcessSpec] | None = None
    ) -> BpmnWorkflow:
        if spec is None:
            raise EngineError("恢复流程实例需要已解析的流程定义 / restoring needs the parsed spec")
        workflow = self.target_class(spec, dict(subprocess_specs or {}), deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _keep_typename(converter: type, typename: str) -> Callable[[type, Any], Any]:
    # The clocked timers serialize under Spiff's own names, so a stored spec stays readable by stock Spiff.
    return lambda target, registry: converter(target, registry, typename=typename)


def _build_registry() -> DefaultRegistry:
    config: dict[type, Any] = dict(SPIFF_CONFIG)
    for stock, clocked in CLOCKED_TIMERS.items():
        config.pop(stock)
        config[clocked] = _keep_typename(TimerConditionalEventDefinitionConverter, stock.__name__)
    config.pop(BpmnWorkflow)
    config[DefinedWorkflow] = _keep_typename(SpeclessWorkflowConverter, "BpmnWorkflow")
    return BpmnWorkflowSerializer.configure(config)


# Built once and only read afterwards (we never call serialize_json, the one thing that flips its flag),
# so threads can share it.
REGISTRY = _build_registry()


def dump_state(workflow: DefinedWorkflow) -> dict:
    state = REGISTRY.convert(workflow)
    state[_FORMAT_KEY] = STATE_FORMAT
    return state


def restore_state(
    state: Mapping[str, Any], spec: BpmnProcessSpec, subprocess_specs: Mapping[str, BpmnProcessSpec]
) -> DefinedWorkflow:
    if not isinstance(state, Mapping) or state.get("typename") != "BpmnWorkflow":
        raise EngineError("不是流程实例状态 / not a workflow state")
    if state.get(_FORMAT_KEY) != STATE_FORMAT:
        raise EngineError(f"实例状态格式 {state.get(_FORMAT_KEY)!r} 不受支持 / unsupported state format (expected {STATE_FORMAT})")
    # The converters pop keys from nested subprocess dicts; copy those so the caller's state is untouched.
    owned = dict(state)
    owned.pop(_FORMAT_KEY)
    owned["subprocesses"] = copy.deepcopy(state.get("subprocesses", {}))
    try:
        return REGISTRY.restore(owned, spec=spec, subprocess_specs=subprocess_specs)
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"实例状态无法恢复 / state cannot be restored: {type(exc).__name__}: {exc}") from exc


def spec_to_json(spec: BpmnProcessSpec, subprocess_specs: Mapping[str, BpmnProcessSpec]) -> str:
    return json.dumps(
        {
            "spec": REGISTRY.convert(spec),
            "subprocess_specs": {name: REGISTRY.convert(sp) for name, sp in subprocess_specs.items()},
            "serializer_version": SPIFF_FORMAT_VERSION,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
