from __future__ import annotations

from datetime import timedelta

import pytest

from engine.definitions import Definition, load_definition
from engine.errors import EngineError
from engine.runtime import advance, complete_task, dump, is_finished, next_timer_due, ready_tasks, start
from engine.versions import blockers, diff, elements, migrate
from tests.engine.samples import T0, FakeRegistry

APPROVE = {"decision": "approve"}

NEW_STEP = """
    <bpmn:userTask id="recheck_intake" name="复核">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="form" value="review" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>flow_review_approve</bpmn:incoming>
      <bpmn:outgoing>flow_recheck_confirm</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="flow_recheck_confirm" sourceRef="recheck_intake" targetRef="confirm_intake" />
"""


def edited(source: tuple[bytes, dict], *replacements: tuple[str, str]) -> Definition:
    bpmn, forms = source
    text = bpmn.decode()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return load_definition(text.encode(), forms)


LONGER_CONFIRM = ('<spiffworkflow:property name="due" value="P5D" />\n        </spiffworkflow:properties>\n'
                  '        <spiffworkflow:instructionsForEndUser>请确认学生',
                  '<spiffworkflow:property name="due" value="P10D" />\n        </spiffworkflow:properties>\n'
                  '        <spiffworkflow:instructionsForEndUser>请确认学生')
STRICTER_REVIEW = ('<spiffworkflow:property name="due" value="P3D" />\n        </spiffworkflow:properties>\n'
                   '        <spiffworkflow:instructionsForEndUser>请审核学生',
                   '<spiffworkflow:property name="due" value="P2D" />\n        </spiffworkflow:properties>\n'
                   '        <spiffworkflow:instructionsForEndUser>请审核学生')
ADD_RECHECK = (
    ('sourceRef="gateway_review" targetRef="confirm_intake"', 'sourceRef="gateway_review" targetRef="recheck_intake"'),
    ('<bpmn:flowNodeRef>confirm_intake</bpmn:flowNodeRef>',
     '<bpmn:flowNodeRef>confirm_intake</bpmn:flowNodeRef>\n        <bpmn:flowNodeRef>recheck_intake</bpmn:flowNodeRef>'),
    ('<bpmn:sequenceFlow id="flow_start_check"', NEW_STEP + '<bpmn:sequenceFlow id="flow_start_check"'),
)


def run_to(definition: Definition, registry: FakeRegistry, *task_ids: str):
    workflow = start(definition, {"student_id": 42}, services=registry.services(), now=T0)
    for hours, task_id in enumerate(task_ids, start=1):
        (task,) = ready_tasks(workflow)
        assert task.task_id == task_id
        complete_task(workflow, task.guid, APPROVE, services=registry.services(), now=T0 + timedelta(hours=hours))
    return workflow


def finish(workflow, registry: FakeRegistry) -> list[str]:
    walked = []
    while not is_finished(workflow):
        (task,) = ready_tasks(workflow)
        walked.append(task.task_id)
        complete_task(workflow, task.guid, APPROVE, services=registry.services(), now=T0 + timedelta(days=1))
    return walked


def test_diff_names_the_changed_task_only(intake_source, intake: Definition) -> None:
    longer = edited(intake_source, LONGER_CONFIRM)
    changes = diff(intake.bpmn, longer.bpmn)
    assert [e.id for e in changes.changed] == ["confirm_intake"]
    assert changes.added == [] and changes.removed == []


def test_diff_of_an_added_step_lists_the_step_and_its_flow(intake_source, intake: Definition) -> None:
    changes = diff(intake.bpmn, edited(intake_source, *ADD_RECHECK).bpmn)
    assert {e.id for e in changes.added} == {"recheck_intake", "flow_recheck_confirm"}
    assert [e.id for e in changes.changed] == ["flow_review_approve"]
    assert diff(edited(intake_source, *ADD_RECHECK).bpmn, intake.bpmn).removed[0].id in {"recheck_intake",
                                                                                         "flow_recheck_confirm"}


def test_moving_a_lane_changes_the_element(intake: Definition) -> None:
    found = elements(intake.bpmn)
    assert found["confirm_intake"].kind == "userTask"
    assert "lane=county_reviewer" in found["confirm_intake"].fingerprint


def test_instance_waiting_at_a_changed_step_moves_and_keeps_its_timer(intake_source, intake, registry) -> None:
    workflow = run_to(intake, registry, "review_intake")
    due_before = next_timer_due(workflow)
    state = dump(workflow)
    longer = edited(intake_source, LONGER_CONFIRM)

    assert blockers(state, intake, longer) == []
    moved = migrate(state, intake, longer)
    assert next_timer_due(moved) == due_before
    assert moved.definition is longer
    assert finish(moved, registry) == ["confirm_intake"]


def test_instance_that_completed_a_changed_step_cannot_move(intake_source, intake, registry) -> None:
    state = dump(run_to(intake, registry, "review_intake"))
    (blocker,) = blockers(state, intake, edited(intake_source, STRICTER_REVIEW))
    assert blocker.element_id == "review_intake"
    assert "已办理" in blocker.message and "修改" in blocker.message


def test_instance_before_an_inserted_step_moves_and_then_takes_it(intake_source, intake, registry) -> None:
    state = dump(run_to(intake, registry))
    with_recheck = edited(intake_source, *ADD_RECHECK)
    assert blockers(state, intake, with_recheck) == []
    moved = migrate(state, intake, with_recheck)
    assert finish(moved, registry) == ["review_intake", "recheck_intake", "confirm_intake"]


def test_instance_waiting_at_a_removed_step_cannot_move(intake_source, intake, registry) -> None:
    with_recheck = edited(intake_source, *ADD_RECHECK)
    state = dump(run_to(with_recheck, registry, "review_intake"))
    (blocker,) = blockers(state, with_recheck, intake)
    assert blocker.element_id == "recheck_intake"
    assert "删除" in blocker.message


def test_state_of_another_version_is_refused(intake_source, intake, registry) -> None:
    longer = edited(intake_source, LONGER_CONFIRM)
    state = dump(run_to(intake, registry))
    with pytest.raises(EngineError):
        migrate(state, longer, intake)


def test_a_migrated_boundary_timer_still_fires_on_its_original_due_time(intake_source, intake, registry) -> None:
    workflow = run_to(intake, registry, "review_intake")
    due = next_timer_due(workflow)
    moved = migrate(dump(workflow), intake, edited(intake_source, LONGER_CONFIRM))
    advance(moved, services=registry.services(), now=due - timedelta(minutes=1))
    assert not any(call[0] == "mark_overdue" for call in registry.calls)
    advance(moved, services=registry.services(), now=due + timedelta(minutes=1))
    assert any(call[0] == "mark_overdue" for call in registry.calls)
    assert [t.task_id for t in ready_tasks(moved)] == ["confirm_intake"]


def test_a_changed_timer_is_a_change_of_its_event(intake_source, intake: Definition) -> None:
    later = edited(intake_source, ('<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P5D"</bpmn:timeDuration>',
                                   '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P6D"</bpmn:timeDuration>'))
    assert [e.id for e in diff(intake.bpmn, later.bpmn).changed] == ["confirm_overdue"]
    assert "TimerEventDefinition_confirm_overdue" not in elements(intake.bpmn)
