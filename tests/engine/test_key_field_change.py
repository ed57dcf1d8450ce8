"""processes/key_field_change.bpmn on the engine alone: every path, who acts, what the registry is asked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from engine.definitions import Definition, load_definition, read_process_dir
from engine.errors import FormDataError
from engine.forms import submission
from engine.runtime import (
    ReadyTask,
    advance,
    complete_task,
    history,
    is_finished,
    next_timer_due,
    ready_tasks,
    start,
)
from engine.templates import render_instructions
from engine.workflow import DefinedWorkflow
from tests.engine.conftest import PROCESSES
from tests.engine.samples import T0, FakeRegistry

REQUEST = 11
START = {"request_id": REQUEST, "student_id": 42, "field_labels": "姓名、身份证件号", "county_code": "520199"}
CHECKED = {"fields": ["name", "id_number"], "id_change": True, "field_labels": "姓名、身份证件号"}
NO_CONFLICT = {"id_change": True, "conflict": False, "matches": []}
APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "申请书未签字"}
REJECT = {"decision": "reject", "comment": "户口簿与申请不符"}
CONFIRMED = {"confirmed": True}
REVISED = {"key_field_change": {"name": "张晓明", "reason": "户口簿登记为张晓明"}}


class ChangeRegistry(FakeRegistry):
    def __init__(self, id_checks: list[dict] | None = None) -> None:
        super().__init__()
        self._id_checks = list(id_checks or [])

    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().services(),
                "register_key_field_request": self._recorder("register_key_field_request", True),
                "check_key_field_request": self._recorder("check_key_field_request", CHECKED),
                "check_key_field_id_number": self.check_id_number,
                "apply_key_field_request": self._recorder("apply_key_field_request", ["name", "id_number"]),
                "reject_key_field_request": self._recorder("reject_key_field_request", "rejected"),
                "notify_initiator": self._recorder("notify_initiator", True)}

    def check_id_number(self, params: dict) -> dict:
        self.calls.append(("check_key_field_id_number", params))
        return self._id_checks.pop(0) if self._id_checks else NO_CONFLICT


@pytest.fixture(scope="module")
def definition() -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "key_field_change"]
    return load_definition(bpmn, forms)


@pytest.fixture
def registry() -> ChangeRegistry:
    return ChangeRegistry()


def only_ready(workflow: DefinedWorkflow) -> ReadyTask:
    tasks = ready_tasks(workflow)
    assert len(tasks) == 1, tasks
    return tasks[0]


def act(workflow: DefinedWorkflow, registry: ChangeRegistry, task_id: str, data: dict, hours: int = 1) -> ReadyTask:
    task = only_ready(workflow)
    assert task.task_id == task_id
    complete_task(workflow, task.guid, data, services=registry.services(), now=T0 + timedelta(hours=hours))
    return task


def begin(definition: Definition, registry: ChangeRegistry) -> DefinedWorkflow:
    workflow = start(definition, dict(START), services=registry.services(), now=T0)
    act(workflow, registry, "submit_application", CONFIRMED)
    return workflow


def test_registrar_uploads_principal_reviews_county_approves_and_the_change_is_applied(
        definition: Definition, registry: ChangeRegistry) -> None:
    workflow = start(definition, dict(START), services=registry.services(), now=T0)
    submit = only_ready(workflow)
    assert (submit.task_id, submit.name, submit.lane, submit.form, submit.due, submit.action) == (
        "submit_application", "上传申请书", "school_registrar", "application_scan", "P5D", None)
    assert submit.org_unit is None  # the school's: the instance's own org unit
    assert registry.calls == [("register_key_field_request", {"request_id": REQUEST})]
    act(workflow, registry, "submit_application", CONFIRMED)

    review = only_ready(workflow)
    assert (review.task_id, review.lane, review.form, review.due) == ("review_change", "school_principal", "review", "P3D")
    assert review.data["application_check"] == CHECKED and review.org_unit is None
    act(workflow, registry, "review_change", APPROVE)

    approve = only_ready(workflow)
    assert (approve.task_id, approve.lane, approve.due) == ("approve_change", "county_reviewer", "P5D")
    assert approve.data["id_check"] == NO_CONFLICT
    assert approve.org_unit == "520199"  # the county approves: its task is the county's, not the school's
    act(workflow, registry, "approve_change", APPROVE, hours=2)

    assert is_finished(workflow)
    assert registry.calls == [
        ("register_key_field_request", {"request_id": REQUEST}),
        ("check_key_field_request", {"request_id": REQUEST}),
        ("check_key_field_id_number", {"request_id": REQUEST}),
        ("apply_key_field_request", {"request_id": REQUEST}),
        ("notify_initiator", {"message": "县级已批准，学籍信息已按申请更改（变更前后已记入该生变更记录）"}),
    ]
    assert [(h["task_id"], h["lane"], h.get("decision")) for h in history(workflow)] == [
        ("register_application", "school_registrar", None),
        ("submit_application", "school_registrar", None),
        ("check_application", "school_registrar", None),
        ("review_change", "school_principal", "approve"),
        ("check_id_number", "county_reviewer", None),
        ("approve_change", "county_reviewer", "approve"),
        ("apply_change", "county_reviewer", None),
        ("notify_applied", "county_reviewer", None),
    ]


def test_the_upload_step_needs_the_confirmation(definition: Definition, registry: ChangeRegistry) -> None:
    workflow = start(definition, dict(START), services=registry.services(), now=T0)
    for bad in ({}, {"confirmed": False}, {"confirmed": True, "note": "x"}):
        with pytest.raises(FormDataError):
            submission(definition, "submit_application", bad)
    assert only_ready(workflow).task_id == "submit_application"


@pytest.mark.parametrize("returning", ["review_change", "approve_change"])
def test_a_return_loops_back_to_the_registrar_and_the_revision_is_checked_again(
        definition: Definition, registry: ChangeRegistry, returning: str) -> None:
    workflow = begin(definition, registry)
    if returning == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, returning, RETURN)

    revise = only_ready(workflow)
    assert (revise.task_id, revise.name, revise.lane, revise.form, revise.action, revise.due) == (
        "revise_application", "退回修改申请", "school_registrar", "key_field_change", "revise_key_field_request", "P5D")
    assert "退回意见：申请书未签字" in render_instructions(definition, "revise_application", revise.data)
    checks = registry.names().count("check_key_field_request")
    act(workflow, registry, "revise_application", REVISED)
    assert registry.names().count("check_key_field_request") == checks + 1
    # The application's values went to the registry action, never into the workflow data.
    assert "name" not in only_ready(workflow).data and "key_field_change" not in only_ready(workflow).data

    act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, "approve_change", APPROVE)
    assert is_finished(workflow) and registry.names()[-2:] == ["apply_key_field_request", "notify_initiator"]


def test_the_revision_form_needs_a_reason_and_knows_only_key_fields(definition: Definition) -> None:
    checked = submission(definition, "revise_application", REVISED)
    assert (checked.action, checked.action_input, checked.workflow_data) == (
        "revise_key_field_request", REVISED["key_field_change"], {})
    for bad in ({"key_field_change": {"name": "张晓明"}}, {"key_field_change": {"reason": "x", "grade": 4}},
                {"name": "张晓明", "reason": "x"}):
        with pytest.raises(FormDataError):
            submission(definition, "revise_application", bad)


@pytest.mark.parametrize("rejecting", ["review_change", "approve_change"])
def test_a_rejection_ends_with_the_reason_recorded(definition: Definition, registry: ChangeRegistry,
                                                   rejecting: str) -> None:
    workflow = begin(definition, registry)
    if rejecting == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, rejecting, REJECT)
    assert is_finished(workflow)
    assert registry.calls[-2:] == [("reject_key_field_request", {"request_id": REQUEST, "comment": "户口簿与申请不符"}),
                                   ("notify_initiator", {"message": "申请被驳回，驳回意见：户口簿与申请不符"})]
    assert "apply_key_field_request" not in registry.names()


def test_the_id_number_is_checked_again_each_time_before_the_county_decides(definition: Definition) -> None:
    conflict = {"id_change": True, "conflict": True, "matches": [7]}
    registry = ChangeRegistry([conflict, NO_CONFLICT])
    workflow = begin(definition, registry)
    act(workflow, registry, "review_change", APPROVE)
    approve = only_ready(workflow)
    text = render_instructions(definition, "approve_change", approve.data)
    assert "县内已有 1 条在籍或待审核的学籍记录" in text
    act(workflow, registry, "approve_change", RETURN)
    act(workflow, registry, "revise_application", REVISED)
    act(workflow, registry, "review_change", APPROVE)
    approve = only_ready(workflow)
    assert approve.data["id_check"] == NO_CONFLICT
    assert "已在全县查重，无重复" in render_instructions(definition, "approve_change", approve.data)
    assert registry.names().count("check_key_field_id_number") == 2


def test_without_an_id_change_the_county_reads_no_duplicate_note(definition: Definition) -> None:
    registry = ChangeRegistry([{"id_change": False, "conflict": False, "matches": []}])
    workflow = begin(definition, registry)
    act(workflow, registry, "review_change", APPROVE)
    text = render_instructions(definition, "approve_change", only_ready(workflow).data)
    assert "查重" not in text and "姓名、身份证件号" in text


def test_county_approval_overdue_is_flagged_and_stays_open(definition: Definition, registry: ChangeRegistry) -> None:
    workflow = begin(definition, registry)
    act(workflow, registry, "review_change", APPROVE, hours=0)
    approve = only_ready(workflow)
    assert next_timer_due(workflow) == T0 + timedelta(days=5)
    advance(workflow, services=registry.services(), now=T0 + timedelta(days=4))
    assert "mark_overdue" not in registry.names()
    advance(workflow, services=registry.services(), now=T0 + timedelta(days=5, seconds=1))
    assert registry.calls[-1] == ("mark_overdue", {"task_id": "approve_change"})
    assert [t.guid for t in ready_tasks(workflow)] == [approve.guid] and next_timer_due(workflow) is None
    act(workflow, registry, "approve_change", APPROVE, hours=200)
    assert is_finished(workflow)


def test_instructions_name_the_fields_and_the_upload(definition: Definition) -> None:
    text = render_instructions(definition, "submit_application", START)
    assert "申请变更：姓名、身份证件号" in text and "未上传扫描件不能提交" in text
    text = render_instructions(definition, "review_change", {**START, "application_check": CHECKED})
    assert "学生（编号 42）" in text and "姓名、身份证件号" in text
