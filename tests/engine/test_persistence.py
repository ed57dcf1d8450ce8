from __future__ import annotations

import copy
import json

import pytest

from engine.definitions import Definition, load_definition
from engine.errors import EngineError
from engine.runtime import complete_task, dump, is_finished, ready_tasks, restore, start
from engine.serializer import REGISTRY
from tests.engine.samples import (
    REVIEW_FORM,
    T0,
    FakeRegistry,
    flow,
    probe_bpmn,
    script_then_review,
    user_task,
    valid_student,
)


def round_trip(state: dict) -> dict:
    return json.loads(json.dumps(state))


def test_state_is_plain_json_without_the_spec(intake: Definition, registry: FakeRegistry) -> None:
    state = dump(start(intake, {"student_id": 42}, services=registry.services(), now=T0))

    assert "spec" not in state and "subprocess_specs" not in state
    assert round_trip(state) == state


def test_restored_instance_continues_where_it_stopped(intake: Definition, registry: FakeRegistry) -> None:
    workflow = start(intake, {"student_id": 42}, services=registry.services(), now=T0)
    (review,) = ready_tasks(workflow)
    complete_task(workflow, review.guid, {"decision": "return", "comment": "补充监护人"}, services=registry.services(), now=T0)
    (revise,) = ready_tasks(workflow)

    restored = restore(intake, round_trip(dump(workflow)), services=registry.services())
    assert ready_tasks(restored) == [revise]
    complete_task(restored, revise.guid, {"student": valid_student()}, services=registry.services(), now=T0)

    restored = restore(intake, round_trip(dump(restored)), services=registry.services())
    for _ in range(2):
        (task,) = ready_tasks(restored)
        complete_task(restored, task.guid, {"decision": "approve"}, services=registry.services(), now=T0)
        restored = restore(intake, round_trip(dump(restored)), services=registry.services())

    assert is_finished(restored)
    assert registry.names() == ["check_duplicates", "check_duplicates", "activate_student"]


def test_restore_reuses_the_parsed_spec(
    intake: Definition, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = round_trip(dump(start(intake, {"student_id": 42}, services=registry.services(), now=T0)))

    def no_spec_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("restore rebuilt a spec from JSON")

    monkeypatch.setitem(REGISTRY.convert_from_dict, "BpmnProcessSpec", no_spec_rebuild)
    first = restore(intake, state, services=registry.services())
    second = restore(intake, state, services=registry.services())

    assert first.spec is intake.spec and second.spec is intake.spec
    assert all(first.subprocess_specs[name] is spec for name, spec in intake.subprocess_specs.items())
    assert {id(task.task_spec) for task in first.tasks.values()} <= {id(s) for s in intake.spec.task_specs.values()}


def test_finished_instance_state_is_under_10_kb(intake: Definition, registry: FakeRegistry) -> None:
    workflow = start(intake, {"student_id": 42}, services=registry.services(), now=T0)
    for _ in range(2):
        (task,) = ready_tasks(workflow)
        complete_task(workflow, task.guid, {"decision": "approve", "comment": "同意"}, services=registry.services(), now=T0)
    assert is_finished(workflow)

    size = len(json.dumps(dump(workflow)).encode())
    spec_size = len(intake.spec_json().encode())
    print(f"finished student_intake state: {size} bytes (spec stored once per version: {spec_size} bytes)")
    assert size < 10 * 1024


def test_restore_leaves_the_callers_state_untouched(intake: Definition, registry: FakeRegistry) -> None:
    state = round_trip(dump(start(intake, {"student_id": 42}, services=registry.services(), now=T0)))
    kept = copy.deepcopy(state)

    restore(intake, state, services=registry.services())

    assert state == kept


def test_state_of_another_process_version_is_refused(intake: Definition, registry: FakeRegistry) -> None:
    other = load_definition(script_then_review("n = 1"), {"review": REVIEW_FORM})
    state = dump(start(intake, {"student_id": 42}, services=registry.services(), now=T0))

    with pytest.raises(EngineError):
        restore(other, state, services=registry.services())


@pytest.mark.parametrize("state", [{}, {"typename": "BpmnWorkflow"}, {"tasks": "garbage"}, []])
def test_garbage_state_is_refused_with_engine_error(intake: Definition, registry: FakeRegistry, state: object) -> None:
    with pytest.raises(EngineError):
        restore(intake, state, services=registry.services())  # type: ignore[arg-type]


def test_corrupted_state_of_the_right_version_is_refused_with_engine_error(intake: Definition, registry: FakeRegistry) -> None:
    state = round_trip(dump(start(intake, {"student_id": 42}, services=registry.services(), now=T0)))
    state["tasks"] = {"not-a-uuid": {}}

    with pytest.raises(EngineError):
        restore(intake, state, services=registry.services())


def test_spec_json_is_the_serialized_spec_of_the_version(intake: Definition) -> None:
    stored = json.loads(intake.spec_json())

    assert stored["spec"]["name"] == "student_intake"
    assert "confirm_intake" in stored["spec"]["task_specs"]
    assert stored["spec"]["task_specs"]["confirm_overdue"]["event_definition"]["typename"] == "DurationTimerEventDefinition"


def test_user_task_in_an_embedded_subprocess_keeps_its_lane_across_restore() -> None:
    inner = (
        '<bpmn:subProcess id="inner" name="子流程"><bpmn:startEvent id="in_start"/>'
        + user_task("look")
        + '<bpmn:endEvent id="in_end"/>'
        + flow("g1", "in_start", "look")
        + flow("g2", "look", "in_end")
        + "</bpmn:subProcess>"
    )
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + inner + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "inner") + flow("f2", "inner", "end"),
        lanes={"county_reviewer": ["start", "inner", "end"]},
    )
    definition = load_definition(bpmn, {"review": REVIEW_FORM})
    workflow = start(definition, {"case": 1}, services={}, now=T0)

    restored = restore(definition, round_trip(dump(workflow)), services={})
    (task,) = ready_tasks(restored)
    assert (task.task_id, task.lane) == ("look", "county_reviewer")
    assert restored.subprocess_specs["inner"] is definition.subprocess_specs["inner"]

    complete_task(restored, task.guid, {"decision": "approve"}, services={}, now=T0)
    assert is_finished(restored)
