"""Completing a user task apart from the automatic steps after it (so that a failing script keeps the
person's completion), the first lane of a process, and the start event's form: no database."""

from datetime import UTC, datetime

import pytest

from engine import runtime, steps
from engine.definitions import load_definition, validate
from engine.errors import DefinitionError, EngineError
from tests.engine.samples import REVIEW_FORM, flow, probe_bpmn, script_task, user_task

NOW = datetime(2026, 9, 1, 2, tzinfo=UTC)
START_FORM = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"title": {"type": "string"}}}


def review_then_script(script: str, *, start: str = '<bpmn:startEvent id="start"/>', lane: str = "school_principal") -> bytes:
    """start → userTask `look` → scriptTask `compute` → userTask `after` → end, all in one lane."""
    return probe_bpmn(
        start + user_task("look") + script_task("compute", script) + user_task("after", name="复核")
        + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "compute") + flow("f3", "compute", "after")
        + flow("f4", "after", "end"),
        lanes={lane: ["start", "look", "compute", "after", "end"]},
    )


def test_a_failing_script_after_a_completion_can_be_undone_and_the_completion_recorded_again() -> None:
    definition = load_definition(review_then_script("x = 1 / 0"), {"review": REVIEW_FORM})
    workflow = runtime.start(definition, {}, services={}, now=NOW)
    (look,) = runtime.ready_tasks(workflow)
    before = runtime.dump(workflow)

    runtime.record_completion(workflow, look.guid, {"decision": "approve"}, services={}, now=NOW)
    assert runtime.ready_tasks(workflow) == []  # nothing after it has run yet
    with pytest.raises(EngineError) as failed:
        runtime.advance(workflow, services={}, now=NOW)
    assert failed.value.element_id == "compute"

    again = runtime.restore(definition, before, services={})
    runtime.record_completion(again, look.guid, {"decision": "approve"}, services={}, now=NOW)
    kept = runtime.dump(again)
    assert [h["task_id"] for h in runtime.history(runtime.restore(definition, kept, services={}))] == ["look"]
    # Running it on later fails the same way, at the same element, until the definition is fixed.
    with pytest.raises(EngineError) as once_more:
        runtime.advance(runtime.restore(definition, kept, services={}), services={}, now=NOW)
    assert once_more.value.element_id == "compute"


def test_complete_task_still_runs_on_to_the_next_wait_state() -> None:
    definition = load_definition(review_then_script("x = 1"), {"review": REVIEW_FORM})
    workflow = runtime.start(definition, {}, services={}, now=NOW)
    (look,) = runtime.ready_tasks(workflow)
    runtime.complete_task(workflow, look.guid, {"decision": "approve"}, services={}, now=NOW)
    assert [t.task_id for t in runtime.ready_tasks(workflow)] == ["after"]
    assert steps.element_name(definition, "after") == "复核" and steps.element_name(definition, "nope") == "nope"


def test_the_first_human_task_gives_the_starting_lane() -> None:
    definition = load_definition(review_then_script("x = 1", lane="county_reviewer"), {"review": REVIEW_FORM})
    assert steps.first_human_task(definition) == "look"
    assert definition.user_tasks["look"].lane == "county_reviewer"
    assert definition.start_form is None


def test_the_start_event_may_name_a_form_which_must_exist() -> None:
    start = ('<bpmn:startEvent id="start"><bpmn:extensionElements><spiffworkflow:properties>'
             '<spiffworkflow:property name="form" value="leave_start"/></spiffworkflow:properties>'
             '</bpmn:extensionElements></bpmn:startEvent>')
    bpmn = review_then_script("x = 1", start=start)
    definition = load_definition(bpmn, {"review": REVIEW_FORM, "leave_start": START_FORM})
    assert definition.start_form == "leave_start" and "leave_start" in definition.forms
    with pytest.raises(DefinitionError) as missing:
        load_definition(bpmn, {"review": REVIEW_FORM})
    assert missing.value.element_id == "start" and "leave_start" in missing.value.message
    assert not validate(bpmn, roles={"school_principal"}, forms={"review": REVIEW_FORM})["valid"]
