from __future__ import annotations

from datetime import timedelta

import pytest

from engine.definitions import Definition
from engine.errors import FormDataError, TaskNotReady
from engine.forms import submission, task_form
from engine.runtime import ReadyTask, complete_task, history, is_finished, ready_tasks, start
from engine.templates import render_instructions
from engine.workflow import DefinedWorkflow
from tests.engine.samples import T0, FakeRegistry, valid_student

STUDENT_ID = 42
CONFLICT = {"conflict": True, "matches": [7, 9]}
NO_CONFLICT = {"conflict": False, "matches": []}


def begin(intake: Definition, registry: FakeRegistry) -> DefinedWorkflow:
    return start(intake, {"student_id": STUDENT_ID}, services=registry.services(), now=T0)


def only_ready(workflow: DefinedWorkflow) -> ReadyTask:
    tasks = ready_tasks(workflow)
    assert len(tasks) == 1, tasks
    return tasks[0]


def act(workflow: DefinedWorkflow, registry: FakeRegistry, task_id: str, data: dict, hours: int = 1) -> ReadyTask:
    task = only_ready(workflow)
    assert task.task_id == task_id
    complete_task(workflow, task.guid, data, services=registry.services(), now=T0 + timedelta(hours=hours))
    return task


APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "身份证号与户口簿不一致"}
REJECT = {"decision": "reject", "comment": "重复录入"}


def test_clean_intake_goes_principal_then_county_and_activates_the_student(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)

    review = only_ready(workflow)
    assert (review.task_id, review.name, review.lane, review.form, review.due, review.action) == (
        "review_intake", "校长审核", "school_principal", "review", "P3D", None
    )
    assert review.data == {"student_id": STUDENT_ID, "duplicate_check": NO_CONFLICT}
    act(workflow, registry, "review_intake", APPROVE)

    confirm = only_ready(workflow)
    assert (confirm.task_id, confirm.lane, confirm.due) == ("confirm_intake", "county_reviewer", "P5D")
    act(workflow, registry, "confirm_intake", APPROVE, hours=2)

    assert is_finished(workflow)
    assert registry.calls == [
        ("check_duplicates", {"student_id": STUDENT_ID}),
        ("activate_student", {"student_id": STUDENT_ID}),
    ]
    assert [(h["task_id"], h["lane"], h.get("decision")) for h in history(workflow)] == [
        ("check_duplicates", "school_registrar", None),
        ("review_intake", "school_principal", "approve"),
        ("confirm_intake", "county_reviewer", "approve"),
        ("activate_student", "county_reviewer", None),
    ]


def test_duplicate_goes_to_the_county_before_the_principal(intake: Definition) -> None:
    registry = FakeRegistry([CONFLICT])
    workflow = begin(intake, registry)

    resolve = only_ready(workflow)
    assert (resolve.task_id, resolve.name, resolve.lane, resolve.form, resolve.due) == (
        "resolve_duplicate", "县级处理重复", "county_reviewer", "review", "P3D"
    )
    act(workflow, registry, "resolve_duplicate", APPROVE)
    act(workflow, registry, "review_intake", APPROVE)
    act(workflow, registry, "confirm_intake", APPROVE)

    assert is_finished(workflow)
    assert registry.names() == ["check_duplicates", "activate_student"]


def test_county_returns_a_duplicate_and_the_revised_student_is_checked_again(intake: Definition) -> None:
    registry = FakeRegistry([CONFLICT, NO_CONFLICT])
    workflow = begin(intake, registry)
    act(workflow, registry, "resolve_duplicate", RETURN)

    revise = only_ready(workflow)
    assert (revise.task_id, revise.name, revise.lane, revise.form, revise.action, revise.due) == (
        "revise_intake", "退回修改", "school_registrar", "student", "revise_student", "P5D"
    )
    assert revise.data["comment"] == RETURN["comment"]
    act(workflow, registry, "revise_intake", {"student": valid_student()})

    assert only_ready(workflow).task_id == "review_intake"
    assert registry.names() == ["check_duplicates", "check_duplicates"]


def test_county_rejects_a_duplicate_and_the_intake_is_voided(intake: Definition) -> None:
    registry = FakeRegistry([CONFLICT])
    workflow = begin(intake, registry)
    act(workflow, registry, "resolve_duplicate", REJECT)

    assert is_finished(workflow)
    assert registry.calls[-1] == ("void_intake", {"student_id": STUDENT_ID, "reason": REJECT["comment"]})
    assert "activate_student" not in registry.names()


def test_principal_return_loops_back_to_registrar(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    act(workflow, registry, "review_intake", RETURN)
    act(workflow, registry, "revise_intake", {"student": valid_student(grade=4)}, hours=2)
    act(workflow, registry, "review_intake", APPROVE, hours=3)
    act(workflow, registry, "confirm_intake", APPROVE, hours=4)

    assert is_finished(workflow)
    assert registry.names() == ["check_duplicates", "check_duplicates", "activate_student"]
    assert [h["task_id"] for h in history(workflow)] == [
        "check_duplicates",
        "review_intake",
        "revise_intake",
        "check_duplicates",
        "review_intake",
        "confirm_intake",
        "activate_student",
    ]


def test_principal_reject_voids_the_intake(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    act(workflow, registry, "review_intake", REJECT)

    assert is_finished(workflow)
    assert registry.names() == ["check_duplicates", "void_intake"]


def test_county_return_at_confirmation_loops_back_to_registrar(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    act(workflow, registry, "review_intake", APPROVE)
    act(workflow, registry, "confirm_intake", RETURN, hours=2)
    act(workflow, registry, "revise_intake", {"student": valid_student()}, hours=3)

    assert only_ready(workflow).task_id == "review_intake"
    assert registry.names() == ["check_duplicates", "check_duplicates"]


def test_county_reject_at_confirmation_voids_the_intake(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    act(workflow, registry, "review_intake", APPROVE)
    act(workflow, registry, "confirm_intake", REJECT, hours=2)

    assert is_finished(workflow)
    assert registry.names() == ["check_duplicates", "void_intake"]
    assert registry.calls[-1][1] == {"student_id": STUDENT_ID, "reason": "重复录入"}


@pytest.mark.parametrize(
    "data",
    [
        {"decision": "return"},
        {"decision": "reject", "comment": "   "},
        {"decision": "maybe"},
        {"decision": "approve", "extra": 1},
        {},
    ],
)
def test_review_data_that_breaks_the_form_is_refused_and_the_task_stays_open(
    intake: Definition, registry: FakeRegistry, data: dict
) -> None:
    workflow = begin(intake, registry)
    task = only_ready(workflow)

    with pytest.raises(FormDataError) as caught:
        complete_task(workflow, task.guid, data, services=registry.services(), now=T0)

    assert caught.value.element_id == "review_intake"
    assert caught.value.errors
    assert only_ready(workflow).guid == task.guid


def test_revision_needs_a_valid_student_and_keeps_it_out_of_the_workflow(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    act(workflow, registry, "review_intake", RETURN)
    revise = only_ready(workflow)

    with pytest.raises(FormDataError) as caught:
        complete_task(workflow, revise.guid, {"student": valid_student(grade=10, sex="3")}, services=registry.services(), now=T0)
    assert {e["path"] for e in caught.value.errors} == {"/student/grade", "/student/sex"}
    with pytest.raises(FormDataError):
        complete_task(workflow, revise.guid, valid_student(), services=registry.services(), now=T0)

    act(workflow, registry, "revise_intake", {"student": valid_student()})
    assert "student" not in only_ready(workflow).data


def test_a_later_approval_does_not_carry_an_earlier_comment(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    act(workflow, registry, "review_intake", RETURN)
    act(workflow, registry, "revise_intake", {"student": valid_student()})
    act(workflow, registry, "review_intake", APPROVE)

    confirm = only_ready(workflow)
    assert confirm.data["decision"] == "approve"
    assert "comment" not in confirm.data
    reviews = [h for h in history(workflow) if h["task_id"] == "review_intake"]
    assert reviews[0]["comment"] == RETURN["comment"]
    assert "comment" not in reviews[1]


def test_only_a_ready_task_can_be_completed(intake: Definition, registry: FakeRegistry) -> None:
    workflow = begin(intake, registry)
    task = act(workflow, registry, "review_intake", APPROVE)

    for guid in (task.guid, "not-a-guid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(TaskNotReady):
            complete_task(workflow, guid, APPROVE, services=registry.services(), now=T0)


def test_instructions_render_from_workflow_data(intake: Definition) -> None:
    registry = FakeRegistry([CONFLICT])
    workflow = begin(intake, registry)
    resolve = only_ready(workflow)

    text = render_instructions(intake, resolve.task_id, resolve.data)

    assert "编号 42" in text
    assert "涉及 2 条记录" in text
    assert render_instructions(intake, "revise_intake", {"student_id": 42, "comment": "请核对"}).startswith("退回意见：请核对")


def test_submission_tells_the_caller_which_action_gets_the_student(intake: Definition) -> None:
    revised = submission(intake, "revise_intake", {"student": valid_student()})
    reviewed = submission(intake, "review_intake", RETURN)

    assert (revised.action, revised.action_input, revised.workflow_data) == ("revise_student", valid_student(), {})
    assert (reviewed.action, reviewed.action_input, reviewed.workflow_data) == (None, None, RETURN)
    revise_form = task_form(intake, "revise_intake")
    assert revise_form is not None and revise_form["required"] == ["student"]
    assert revise_form["properties"]["student"]["required"] == intake.forms["student"]["required"]
    assert task_form(intake, "review_intake") == intake.forms["review"]
