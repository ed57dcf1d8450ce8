"""processes/status_change.bpmn on the engine alone: a single student's change, a 就读方式/一补变更 and a
graduation list, every gateway branch, who acts and what the registry is asked."""

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

COUNTY = "520199"
SINGLE = {"kind": "single", "student_id": 42, "to_status": "suspended", "change_label": "休学",
          "effective_month": "2026-03", "reason": "因病休学一年", "county_code": COUNTY}
GRADUATION = {"kind": "graduation", "batch_id": 5, "to_status": "graduated", "change_label": "毕业",
              "grade_name": "六年级", "students_total": 38, "effective_month": "2027-07", "reason": "六年级毕业",
              "county_code": COUNTY}
BOARDING = {"kind": "boarding", "student_id": 42, "boarding_mode": "2", "boarding_allowance": True,
            "change_label": "就读方式 走读 → 住校，不享受一补 → 享受一补", "effective_month": "2026-03",
            "reason": "家远，改为住校", "county_code": COUNTY}
BOARDING_PARAMS = {"student_id": 42, "boarding_mode": "2", "boarding_allowance": True, "effective_month": "2026-03",
                   "reason": "家远，改为住校"}
BOARDING_REVISED = {"boarding_mode": "2", "boarding_allowance": False, "effective_month": "2026-04",
                    "reason": "改为住校，一补待家庭经济困难认定后再申请"}
APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "变更年月有误"}
REJECT = {"decision": "reject", "comment": "证明材料不足"}
REVISED = {"to_status": "dropped_out", "effective_month": "2026-04", "reason": "长期未到校，劝返无效"}
APPLY_PARAMS = {"student_id": 42, "to_status": "suspended", "effective_month": "2026-03", "reason": "因病休学一年"}


class StatusRegistry(FakeRegistry):
    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().services(),
                "check_status_change": self._recorder("check_status_change", "辍学"),
                "apply_status_change": self._recorder("apply_status_change", "suspended"),
                "check_boarding_change": self._recorder("check_boarding_change", "就读方式 走读 → 住校"),
                "apply_boarding_change": self._recorder("apply_boarding_change",
                                                        {"boarding_mode": "2", "boarding_allowance": True}),
                "register_graduation_batch": self._recorder("register_graduation_batch", True),
                "graduate_batch": self._recorder("graduate_batch", 38),
                "close_graduation_batch": self._recorder("close_graduation_batch", "return")}


@pytest.fixture(scope="module")
def definition() -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "status_change"]
    return load_definition(bpmn, forms)


@pytest.fixture
def registry() -> StatusRegistry:
    return StatusRegistry()


def only_ready(workflow: DefinedWorkflow) -> ReadyTask:
    tasks = ready_tasks(workflow)
    assert len(tasks) == 1, tasks
    return tasks[0]


def act(workflow: DefinedWorkflow, registry: StatusRegistry, task_id: str, data: dict, hours: int = 1) -> None:
    task = only_ready(workflow)
    assert task.task_id == task_id
    complete_task(workflow, task.guid, data, services=registry.services(), now=T0 + timedelta(hours=hours))


def begin(definition: Definition, registry: StatusRegistry, data: dict) -> DefinedWorkflow:
    return start(definition, dict(data), services=registry.services(), now=T0)


# One student: 休学, 复学, 辍学, 死亡 --------------------------------------------------------------


def test_a_single_change_goes_principal_then_county_then_changes_the_status(definition: Definition,
                                                                             registry: StatusRegistry) -> None:
    workflow = begin(definition, registry, SINGLE)
    review = only_ready(workflow)
    assert (review.task_id, review.name, review.lane, review.form, review.due) == (
        "review_change", "校长审核", "school_principal", "review", "P3D")
    assert review.org_unit is None  # the school's: the instance's own org unit
    assert registry.calls == []
    act(workflow, registry, "review_change", APPROVE)
    approve = only_ready(workflow)
    assert (approve.task_id, approve.lane, approve.due) == ("approve_change", "county_reviewer", "P5D")
    assert approve.org_unit == COUNTY  # the county approves: its task is the county's, not the school's
    act(workflow, registry, "approve_change", APPROVE)
    assert is_finished(workflow)
    assert registry.calls == [("apply_status_change", APPLY_PARAMS)]
    assert [h["task_id"] for h in history(workflow)] == ["review_change", "approve_change", "apply_change"]


@pytest.mark.parametrize("returning", ["review_change", "approve_change"])
def test_a_returned_single_change_is_revised_checked_and_reviewed_again(definition: Definition,
                                                                        registry: StatusRegistry, returning: str) -> None:
    workflow = begin(definition, registry, SINGLE)
    if returning == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, returning, RETURN)
    revise = only_ready(workflow)
    assert (revise.task_id, revise.lane, revise.form, revise.action, revise.due) == (
        "revise_change", "school_registrar", "status_change", None, "P5D")
    assert "退回意见：变更年月有误" in render_instructions(definition, "revise_change", revise.data)
    act(workflow, registry, "revise_change", REVISED)
    assert registry.calls == [("check_status_change", {"student_id": 42, **REVISED})]
    review = only_ready(workflow)
    assert review.task_id == "review_change" and review.data["change_label"] == "辍学"
    act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, "approve_change", APPROVE)
    assert registry.calls[-1] == ("apply_status_change", {"student_id": 42, **REVISED})


def test_the_revision_form_allows_only_the_four_changes_and_a_month(definition: Definition) -> None:
    assert submission(definition, "revise_change", REVISED).workflow_data == REVISED
    for bad in ({**REVISED, "to_status": "graduated"}, {**REVISED, "effective_month": "2026-13"},
                {**REVISED, "reason": ""}, {"to_status": "suspended", "effective_month": "2026-04"},
                {**REVISED, "student_id": 7}):
        with pytest.raises(FormDataError):
            submission(definition, "revise_change", bad)


@pytest.mark.parametrize("rejecting", ["review_change", "approve_change"])
def test_a_rejected_single_change_ends_and_changes_nothing(definition: Definition, registry: StatusRegistry,
                                                           rejecting: str) -> None:
    workflow = begin(definition, registry, SINGLE)
    if rejecting == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, rejecting, REJECT)
    assert is_finished(workflow) and registry.calls == []
    assert history(workflow)[-1]["comment"] == "证明材料不足"


def test_instructions_say_when_the_subsidy_stops_or_resumes(definition: Definition) -> None:
    leaving = render_instructions(definition, "review_change", SINGLE)
    assert "休学" in leaving and "自 2026-03 起不再享受营养改善计划补助" in leaving and "因病休学一年" in leaving
    back = render_instructions(definition, "approve_change", {**SINGLE, "to_status": "active", "change_label": "复学"})
    assert "自 2026-03 起恢复享受营养改善计划补助" in back


# One student's 就读方式/一补变更 -------------------------------------------------------------------


def test_a_boarding_change_goes_principal_then_county_then_changes_boarding_and_allowance(
        definition: Definition, registry: StatusRegistry) -> None:
    workflow = begin(definition, registry, BOARDING)
    review = only_ready(workflow)
    assert (review.task_id, review.lane, review.org_unit) == ("review_change", "school_principal", None)
    assert registry.calls == []
    act(workflow, registry, "review_change", APPROVE)
    approve = only_ready(workflow)
    assert (approve.task_id, approve.lane, approve.org_unit) == ("approve_change", "county_reviewer", COUNTY)
    act(workflow, registry, "approve_change", APPROVE)
    assert is_finished(workflow)
    assert registry.calls == [("apply_boarding_change", BOARDING_PARAMS)]
    assert "apply_status_change" not in registry.names()
    assert [h["task_id"] for h in history(workflow)] == ["review_change", "approve_change", "apply_boarding"]


@pytest.mark.parametrize("returning", ["review_change", "approve_change"])
def test_a_returned_boarding_change_is_revised_on_its_own_form_checked_and_reviewed_again(
        definition: Definition, registry: StatusRegistry, returning: str) -> None:
    workflow = begin(definition, registry, BOARDING)
    if returning == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, returning, RETURN)
    revise = only_ready(workflow)
    assert (revise.task_id, revise.lane, revise.form, revise.action, revise.due, revise.org_unit) == (
        "revise_boarding", "school_registrar", "boarding_change", None, "P5D", None)
    text = render_instructions(definition, "revise_boarding", revise.data)
    assert "退回意见：变更年月有误" in text and "就读方式 走读 → 住校，不享受一补 → 享受一补" in text
    act(workflow, registry, "revise_boarding", BOARDING_REVISED)
    assert registry.calls == [("check_boarding_change", {"student_id": 42, **BOARDING_REVISED})]
    review = only_ready(workflow)
    assert review.task_id == "review_change" and review.data["change_label"] == "就读方式 走读 → 住校"
    act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, "approve_change", APPROVE)
    assert is_finished(workflow)
    assert registry.calls[-1] == ("apply_boarding_change", {"student_id": 42, **BOARDING_REVISED})


@pytest.mark.parametrize("rejecting", ["review_change", "approve_change"])
def test_a_rejected_boarding_change_ends_and_changes_nothing(definition: Definition, registry: StatusRegistry,
                                                             rejecting: str) -> None:
    workflow = begin(definition, registry, BOARDING)
    if rejecting == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, rejecting, REJECT)
    assert is_finished(workflow) and registry.calls == []
    assert history(workflow)[-1]["comment"] == "证明材料不足"


def test_the_boarding_revision_form_takes_the_two_values_a_month_and_a_reason(definition: Definition) -> None:
    assert submission(definition, "revise_boarding", BOARDING_REVISED).workflow_data == BOARDING_REVISED
    for bad in ({**BOARDING_REVISED, "boarding_mode": "3"}, {**BOARDING_REVISED, "boarding_allowance": "是"},
                {k: v for k, v in BOARDING_REVISED.items() if k != "boarding_allowance"},
                {**BOARDING_REVISED, "effective_month": "2026-4"}, {**BOARDING_REVISED, "reason": ""},
                {**BOARDING_REVISED, "to_status": "suspended"}):
        with pytest.raises(FormDataError):
            submission(definition, "revise_boarding", bad)


def test_boarding_instructions_say_the_months_before_stay_as_they_were(definition: Definition) -> None:
    for task_id in ("review_change", "approve_change"):
        text = render_instructions(definition, task_id, BOARDING)
        assert "就读方式/一补变更" in text and "就读方式 走读 → 住校，不享受一补 → 享受一补" in text
        assert "自 2026-03 起按变更后的就读方式和一补计算，此前各月不变" in text
        assert "不再享受" not in text and "家远，改为住校" in text


# A school's graduation list -----------------------------------------------------------------------


def test_a_graduation_list_is_registered_reviewed_once_approved_once_and_graduated(definition: Definition,
                                                                                  registry: StatusRegistry) -> None:
    workflow = begin(definition, registry, GRADUATION)
    assert registry.calls == [("register_graduation_batch", {"batch_id": 5})]
    review = only_ready(workflow)
    assert (review.task_id, review.lane) == ("review_change", "school_principal")
    text = render_instructions(definition, "review_change", review.data)
    assert "六年级毕业名单：共 38 人，毕业年月 2027-07" in text
    act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, "approve_change", APPROVE)
    assert is_finished(workflow)
    assert registry.calls[-1] == ("graduate_batch", {"batch_id": 5})
    assert [h["task_id"] for h in history(workflow)] == [
        "register_graduation", "review_change", "approve_change", "graduate_batch"]


@pytest.mark.parametrize(("deciding", "decision"), [("review_change", RETURN), ("review_change", REJECT),
                                                    ("approve_change", RETURN), ("approve_change", REJECT)])
def test_a_graduation_list_returned_or_rejected_closes_unchanged(definition: Definition, registry: StatusRegistry,
                                                                 deciding: str, decision: dict) -> None:
    workflow = begin(definition, registry, GRADUATION)
    if deciding == "approve_change":
        act(workflow, registry, "review_change", APPROVE)
    act(workflow, registry, deciding, decision)
    assert is_finished(workflow)
    assert registry.calls[-1] == ("close_graduation_batch", {"batch_id": 5, **decision})
    assert "graduate_batch" not in registry.names()


# Deadlines -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [SINGLE, GRADUATION, BOARDING])
def test_county_approval_overdue_is_flagged_and_the_task_stays_open(definition: Definition, registry: StatusRegistry,
                                                                    data: dict) -> None:
    workflow = begin(definition, registry, data)
    act(workflow, registry, "review_change", APPROVE, hours=0)
    approve = only_ready(workflow)
    assert next_timer_due(workflow) == T0 + timedelta(days=5)
    advance(workflow, services=registry.services(), now=T0 + timedelta(days=5, seconds=1))
    assert registry.calls[-1] == ("mark_overdue", {"task_id": "approve_change"})
    assert [t.guid for t in ready_tasks(workflow)] == [approve.guid]
    act(workflow, registry, "approve_change", APPROVE, hours=150)
    assert is_finished(workflow)
