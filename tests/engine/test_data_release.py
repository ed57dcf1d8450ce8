"""processes/data_release.bpmn on the engine alone: every path, who acts, what the registry is asked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from engine.definitions import Definition, load_definition, read_process_dir
from engine.errors import FormDataError
from engine.forms import submission
from engine.runtime import ReadyTask, complete_task, history, is_finished, ready_tasks, start
from engine.templates import render_instructions
from engine.workflow import DefinedWorkflow
from tests.engine.conftest import PROCESSES
from tests.engine.samples import T0, FakeRegistry

RELEASE = 21
CHECKED = {"rows": 1234, "summary": "演示县统计局申请，在籍学生（全部年级），5 个字段，约 1234 人",
           "full_labels": "身份证件号（含学籍号、全国学籍号）"}
APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "只提供统计必需的字段"}
REJECT = {"decision": "reject", "comment": "用途不明确"}
REVISED = {"data_release": {"org_units": ["520199"], "fields": ["name", "grade"], "purpose": "学生人数统计核对",
                            "recipient_department": "演示县统计局", "recipient_person": "王统计"}}
REVISE_TASK = {"county_aid_center": "revise_request_county", "township_officer": "revise_request_township",
               "school_principal": "revise_request_school"}


class ReleaseRegistry(FakeRegistry):
    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().services(),
                "register_data_release": self._recorder("register_data_release", True),
                "check_data_release": self._recorder("check_data_release", CHECKED),
                "build_data_release": self._recorder("build_data_release", {"rows": 1234, "expires_at": "x"}),
                "reject_data_release": self._recorder("reject_data_release", "rejected")}


@pytest.fixture(scope="module")
def definition() -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "data_release"]
    return load_definition(bpmn, forms)


@pytest.fixture
def registry() -> ReleaseRegistry:
    return ReleaseRegistry()


def only_ready(workflow: DefinedWorkflow) -> ReadyTask:
    tasks = ready_tasks(workflow)
    assert len(tasks) == 1, tasks
    return tasks[0]


def act(workflow: DefinedWorkflow, registry: ReleaseRegistry, task_id: str, data: dict) -> ReadyTask:
    task = only_ready(workflow)
    assert task.task_id == task_id
    complete_task(workflow, task.guid, data, services=registry.services(), now=T0 + timedelta(hours=1))
    return task


def begin(definition: Definition, registry: ReleaseRegistry, role: str = "county_aid_center") -> DefinedWorkflow:
    return start(definition, {"release_id": RELEASE, "requester_role": role, "county_code": "520199"},
                 services=registry.services(), now=T0)


def test_the_request_is_registered_checked_approved_by_the_county_and_the_file_built(
        definition: Definition, registry: ReleaseRegistry) -> None:
    workflow = begin(definition, registry)
    approve = only_ready(workflow)
    assert (approve.task_id, approve.name, approve.lane, approve.form, approve.due) == (
        "approve_request", "县级审批", "county_reviewer", "review", "P5D")
    assert approve.data["release_check"] == CHECKED
    act(workflow, registry, "approve_request", APPROVE)

    assert is_finished(workflow)
    assert registry.calls == [("register_data_release", {"release_id": RELEASE}),
                              ("check_data_release", {"release_id": RELEASE}),
                              ("build_data_release", {"release_id": RELEASE})]
    assert [(h["task_id"], h.get("decision")) for h in history(workflow)] == [
        ("register_request", None), ("check_request", None), ("approve_request", "approve"), ("build_release", None)]


def test_a_rejection_ends_with_the_reason_and_builds_nothing(definition: Definition, registry: ReleaseRegistry) -> None:
    workflow = begin(definition, registry)
    act(workflow, registry, "approve_request", REJECT)
    assert is_finished(workflow)
    assert registry.calls[-1] == ("reject_data_release", {"release_id": RELEASE, "comment": "用途不明确"})
    assert "build_data_release" not in registry.names()


@pytest.mark.parametrize("role", sorted(REVISE_TASK))
def test_a_return_goes_back_to_the_requesters_lane_and_the_revision_is_checked_again(
        definition: Definition, registry: ReleaseRegistry, role: str) -> None:
    workflow = begin(definition, registry, role)
    act(workflow, registry, "approve_request", RETURN)

    revise = only_ready(workflow)
    assert (revise.task_id, revise.name, revise.lane, revise.form, revise.action, revise.due) == (
        REVISE_TASK[role], "退回修改申请", role, "data_release", "revise_data_release", "P7D")
    assert "退回意见：只提供统计必需的字段" in render_instructions(definition, revise.task_id, revise.data)
    act(workflow, registry, revise.task_id, REVISED)
    assert registry.names().count("check_data_release") == 2
    # The request's content went to the registry action, never into the workflow data.
    assert "data_release" not in only_ready(workflow).data and "purpose" not in only_ready(workflow).data

    act(workflow, registry, "approve_request", APPROVE)
    assert is_finished(workflow) and registry.names()[-1] == "build_data_release"


def test_the_revision_form_takes_the_request_and_nothing_else(definition: Definition) -> None:
    checked = submission(definition, "revise_request_county", REVISED)
    assert (checked.action, checked.action_input, checked.workflow_data) == (
        "revise_data_release", REVISED["data_release"], {})
    request = REVISED["data_release"]
    for bad in ({"data_release": {**request, "valid_days": 31}}, {"data_release": {**request, "max_downloads": 0}},
                {"data_release": {**request, "note": "x"}}, {"data_release": {"fields": ["name"]}},
                {"data_release": {**request, "fields": "name"}}, dict(request)):
        with pytest.raises(FormDataError):
            submission(definition, "revise_request_county", bad)


def test_the_reviewer_reads_the_summary_and_a_warning_for_full_ids(definition: Definition) -> None:
    text = render_instructions(definition, "approve_request", {"release_id": RELEASE, "release_check": CHECKED})
    assert "演示县统计局申请" in text and "约 1234 人" in text and "注意：申请完整提供身份证件号" in text
    masked = render_instructions(definition, "approve_request",
                                 {"release_id": RELEASE, "release_check": {**CHECKED, "full_labels": ""}})
    assert "注意" not in masked and "商业用途" in masked

