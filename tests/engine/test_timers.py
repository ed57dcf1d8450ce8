from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.definitions import Definition, load_definition
from engine.errors import EngineError
from engine.runtime import advance, complete_task, dump, next_timer_due, ready_tasks, restore, start
from engine.timers import due_at
from engine.workflow import DefinedWorkflow
from tests.engine.samples import REVIEW_FORM, T0, FakeRegistry, flow, probe_bpmn, user_task

DAY = timedelta(days=1)


def awaiting_confirmation(intake: Definition, registry: FakeRegistry) -> DefinedWorkflow:
    """An instance whose principal approved at T0, so confirm_intake became READY at T0."""
    workflow = start(intake, {"student_id": 42}, services=registry.services(), now=T0 - timedelta(hours=1))
    (review,) = ready_tasks(workflow)
    complete_task(workflow, review.guid, {"decision": "approve"}, services=registry.services(), now=T0)
    return workflow


def test_confirm_overdue_is_due_five_days_after_the_task_opened(intake: Definition, registry: FakeRegistry) -> None:
    workflow = awaiting_confirmation(intake, registry)

    due = next_timer_due(workflow)

    assert due == T0 + 5 * DAY
    assert due is not None and due.tzinfo is not None


def test_confirm_overdue_fires_after_five_days_and_leaves_the_task_open(intake: Definition, registry: FakeRegistry) -> None:
    workflow = awaiting_confirmation(intake, registry)
    (confirm,) = ready_tasks(workflow)

    advance(workflow, services=registry.services(), now=T0 + 4 * DAY)
    assert "mark_overdue" not in registry.names()

    advance(workflow, services=registry.services(), now=T0 + 5 * DAY + timedelta(seconds=1))
    assert registry.calls[-1] == ("mark_overdue", {"student_id": 42, "task_id": "confirm_intake"})
    # Non-interrupting: the county can still confirm.
    assert [t.guid for t in ready_tasks(workflow)] == [confirm.guid]
    assert next_timer_due(workflow) is None


def test_firing_again_changes_nothing(intake: Definition, registry: FakeRegistry) -> None:
    workflow = awaiting_confirmation(intake, registry)
    advance(workflow, services=registry.services(), now=T0 + 5 * DAY + timedelta(seconds=1))
    before = json.dumps(dump(workflow), sort_keys=True)
    calls = len(registry.calls)

    advance(workflow, services=registry.services(), now=T0 + 5 * DAY + timedelta(seconds=1))
    advance(workflow, services=registry.services(), now=T0 + 30 * DAY)

    assert len(registry.calls) == calls
    assert json.dumps(dump(workflow), sort_keys=True) == before


def test_confirming_in_time_cancels_the_timer(intake: Definition, registry: FakeRegistry) -> None:
    workflow = awaiting_confirmation(intake, registry)
    (confirm,) = ready_tasks(workflow)
    complete_task(workflow, confirm.guid, {"decision": "approve"}, services=registry.services(), now=T0 + 2 * DAY)

    assert next_timer_due(workflow) is None
    advance(workflow, services=registry.services(), now=T0 + 10 * DAY)
    assert "mark_overdue" not in registry.names()


def test_overdue_confirmation_can_still_be_approved(intake: Definition, registry: FakeRegistry) -> None:
    workflow = awaiting_confirmation(intake, registry)
    advance(workflow, services=registry.services(), now=T0 + 6 * DAY)
    (confirm,) = ready_tasks(workflow)

    complete_task(workflow, confirm.guid, {"decision": "approve"}, services=registry.services(), now=T0 + 7 * DAY)

    assert registry.names() == ["check_duplicates", "mark_overdue", "activate_student"]
    assert workflow.is_completed()


def test_timer_survives_dump_and_restore(intake: Definition, registry: FakeRegistry) -> None:
    state = json.loads(json.dumps(dump(awaiting_confirmation(intake, registry))))
    restored = restore(intake, state, services=registry.services())

    assert next_timer_due(restored) == T0 + 5 * DAY
    advance(restored, services=registry.services(), now=T0 + 4 * DAY)
    assert "mark_overdue" not in registry.names()
    advance(restored, services=registry.services(), now=T0 + 5 * DAY)
    assert registry.names()[-1] == "mark_overdue"


def test_concurrent_workflows_each_see_their_own_clock(intake: Definition) -> None:
    registries = [FakeRegistry() for _ in range(16)]
    workflows = [awaiting_confirmation(intake, r) for r in registries]

    def poll(index: int) -> None:
        # Even indexes poll before the due time, odd ones after; all at once on several threads.
        when = T0 + (4 * DAY if index % 2 == 0 else 6 * DAY)
        for _ in range(20):
            advance(workflows[index], services=registries[index].services(), now=when)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(poll, range(len(workflows))))

    fired = ["mark_overdue" in r.names() for r in registries]
    assert fired == [index % 2 == 1 for index in range(len(workflows))]


def test_clock_must_be_timezone_aware(intake: Definition, registry: FakeRegistry) -> None:
    with pytest.raises(EngineError):
        start(intake, {"student_id": 1}, services=registry.services(), now=datetime(2025, 9, 1, 8))


def test_due_at_counts_calendar_months_and_days() -> None:
    start_at = datetime(2025, 1, 15, 0, 0, tzinfo=UTC)

    assert due_at(start_at, "P5D") == datetime(2025, 1, 20, tzinfo=UTC)
    assert due_at(start_at, "PT12H") == datetime(2025, 1, 15, 12, tzinfo=UTC)
    assert due_at(start_at, "P1M") == datetime(2025, 2, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        due_at(start_at, "5 days")


def test_date_timer_from_workflow_data_waits_for_its_moment(registry: FakeRegistry) -> None:
    catch = (
        '<bpmn:intermediateCatchEvent id="wait_deadline" name="等到截止日">'
        "<bpmn:timerEventDefinition><bpmn:timeDate>deadline</bpmn:timeDate></bpmn:timerEventDefinition>"
        "</bpmn:intermediateCatchEvent>"
    )
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + catch + user_task("look") + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "wait_deadline") + flow("f2", "wait_deadline", "look") + flow("f3", "look", "end"),
        lanes={"county_reviewer": ["start", "wait_deadline", "look", "end"]},
    )
    definition = load_definition(bpmn, {"review": REVIEW_FORM})
    deadline = T0 + 2 * DAY
    workflow = start(definition, {"deadline": deadline.astimezone(timezone(timedelta(hours=8))).isoformat()}, services={}, now=T0)

    assert next_timer_due(workflow) == deadline
    advance(workflow, services={}, now=deadline - timedelta(seconds=1))
    assert ready_tasks(workflow) == []
    advance(workflow, services={}, now=deadline)
    assert [t.task_id for t in ready_tasks(workflow)] == ["look"]


def test_cycle_timer_fires_once_per_period_up_to_its_count(registry: FakeRegistry) -> None:
    reminder = (
        '<bpmn:boundaryEvent id="remind_every_hour" attachedToRef="look" cancelActivity="false">'
        '<bpmn:timerEventDefinition><bpmn:timeCycle>"R2/PT1H"</bpmn:timeCycle></bpmn:timerEventDefinition>'
        "</bpmn:boundaryEvent>"
        '<bpmn:serviceTask id="remind"><bpmn:extensionElements>'
        '<spiffworkflow:serviceTaskOperator id="mark_overdue"><spiffworkflow:parameters>'
        '<spiffworkflow:parameter id="task_id" type="str" value="&quot;look&quot;"/>'
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>"
        '<bpmn:endEvent id="reminded"/>'
        + flow("r1", "remind_every_hour", "remind")
        + flow("r2", "remind", "reminded")
    )
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + user_task("look") + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "end") + reminder,
        lanes={"county_reviewer": ["start", "look", "end", "remind_every_hour", "remind", "reminded"]},
    )
    definition = load_definition(bpmn, {"review": REVIEW_FORM})
    workflow = start(definition, {}, services=registry.services(), now=T0)

    assert next_timer_due(workflow) == T0 + timedelta(hours=1)
    advance(workflow, services=registry.services(), now=T0 + timedelta(minutes=59))
    assert registry.names() == []
    advance(workflow, services=registry.services(), now=T0 + timedelta(hours=1))
    assert registry.names() == ["mark_overdue"]
    advance(workflow, services=registry.services(), now=T0 + timedelta(hours=1, minutes=30))
    assert registry.names() == ["mark_overdue"]
    advance(workflow, services=registry.services(), now=T0 + 5 * DAY)
    assert registry.names() == ["mark_overdue", "mark_overdue"]
    assert next_timer_due(workflow) is None
    assert [t.task_id for t in ready_tasks(workflow)] == ["look"]


ESCALATE = (
    '<bpmn:serviceTask id="remind"><bpmn:extensionElements>'
    '<spiffworkflow:serviceTaskOperator id="mark_overdue"><spiffworkflow:parameters>'
    '<spiffworkflow:parameter id="task_id" type="str" value="&quot;look&quot;"/>'
    "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements></bpmn:serviceTask>"
)


def interrupting_deadline() -> Definition:
    """`look` with an interrupting P2D boundary timer: when it fires, `look` is taken away and the county escalates."""
    late = (
        '<bpmn:boundaryEvent id="too_late" attachedToRef="look" cancelActivity="true">'
        '<bpmn:timerEventDefinition><bpmn:timeDuration>"P2D"</bpmn:timeDuration></bpmn:timerEventDefinition>'
        "</bpmn:boundaryEvent>"
        + ESCALATE + user_task("escalated") + '<bpmn:endEvent id="closed"/>'
        + flow("l1", "too_late", "remind") + flow("l2", "remind", "escalated") + flow("l3", "escalated", "closed")
    )
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + user_task("look") + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "end") + late,
        lanes={"county_reviewer": ["start", "look", "end", "too_late", "remind", "escalated", "closed"]},
    )
    return load_definition(bpmn, {"review": REVIEW_FORM})


def test_interrupting_boundary_timer_takes_the_task_away_when_it_fires(registry: FakeRegistry) -> None:
    workflow = start(interrupting_deadline(), {}, services=registry.services(), now=T0)
    (look,) = ready_tasks(workflow)
    assert next_timer_due(workflow) == T0 + 2 * DAY

    advance(workflow, services=registry.services(), now=T0 + 2 * DAY - timedelta(seconds=1))
    assert [t.guid for t in ready_tasks(workflow)] == [look.guid] and registry.names() == []

    advance(workflow, services=registry.services(), now=T0 + 2 * DAY)
    assert registry.names() == ["mark_overdue"]
    assert [t.task_id for t in ready_tasks(workflow)] == ["escalated"]
    assert next_timer_due(workflow) is None
    with pytest.raises(EngineError):  # the reviewer's late completion is refused: the task is gone
        complete_task(workflow, look.guid, {"decision": "approve"}, services=registry.services(), now=T0 + 3 * DAY)


def test_completing_before_an_interrupting_timer_cancels_it(registry: FakeRegistry) -> None:
    workflow = start(interrupting_deadline(), {}, services=registry.services(), now=T0)
    (look,) = ready_tasks(workflow)
    complete_task(workflow, look.guid, {"decision": "approve"}, services=registry.services(), now=T0 + DAY)

    assert workflow.is_completed() and next_timer_due(workflow) is None
    advance(workflow, services=registry.services(), now=T0 + 5 * DAY)
    assert registry.names() == []


def test_intermediate_timer_by_duration_waits_from_when_it_is_reached(registry: FakeRegistry) -> None:
    wait = ('<bpmn:intermediateCatchEvent id="cool_off" name="冷静期">'
            '<bpmn:timerEventDefinition><bpmn:timeDuration>"PT36H"</bpmn:timeDuration></bpmn:timerEventDefinition>'
            "</bpmn:intermediateCatchEvent>")
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + user_task("first") + wait + user_task("look") + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "first") + flow("f2", "first", "cool_off") + flow("f3", "cool_off", "look")
        + flow("f4", "look", "end"),
        lanes={"county_reviewer": ["start", "first", "cool_off", "look", "end"]},
    )
    workflow = start(load_definition(bpmn, {"review": REVIEW_FORM}), {}, services={}, now=T0)
    assert next_timer_due(workflow) is None  # not reached yet: nothing counts

    (first,) = ready_tasks(workflow)
    complete_task(workflow, first.guid, {"decision": "approve"}, services={}, now=T0 + DAY)
    assert next_timer_due(workflow) == T0 + DAY + timedelta(hours=36)
    state = json.loads(json.dumps(dump(workflow)))  # waits across a save, as a worker's poll finds it
    workflow = restore(load_definition(bpmn, {"review": REVIEW_FORM}), state, services={})

    advance(workflow, services={}, now=T0 + DAY + timedelta(hours=35, minutes=59))
    assert ready_tasks(workflow) == []
    advance(workflow, services={}, now=T0 + DAY + timedelta(hours=36))
    assert [t.task_id for t in ready_tasks(workflow)] == ["look"]
    assert next_timer_due(workflow) is None


def test_timer_start_event_by_duration_waits_from_the_start(registry: FakeRegistry) -> None:
    # Supported: the start event is a catching timer like any other; the instance exists from `start` on
    # and its first task opens when the duration has passed (annual_cycle's start uses a timeDate instead).
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"><bpmn:timerEventDefinition><bpmn:timeDuration>"P1D"</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:startEvent>"
        + user_task("look") + '<bpmn:endEvent id="end"/>' + flow("f1", "start", "look") + flow("f2", "look", "end"),
        lanes={"county_reviewer": ["start", "look", "end"]},
    )
    workflow = start(load_definition(bpmn, {"review": REVIEW_FORM}), {}, services={}, now=T0)

    assert ready_tasks(workflow) == [] and next_timer_due(workflow) == T0 + DAY
    advance(workflow, services={}, now=T0 + DAY - timedelta(seconds=1))
    assert ready_tasks(workflow) == []
    advance(workflow, services={}, now=T0 + DAY)
    assert [t.task_id for t in ready_tasks(workflow)] == ["look"]
