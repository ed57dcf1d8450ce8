"""processes/student_transfer.bpmn on the engine alone: every path of the three kinds, who acts where,
and what the registry is asked to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from engine.definitions import Definition, load_definition, read_process_dir
from engine.errors import FormDataError
from engine.forms import task_form
from engine.runtime import ReadyTask, advance, complete_task, is_finished, next_timer_due, ready_tasks, start
from engine.templates import render_instructions
from engine.workflow import DefinedWorkflow
from tests.engine.conftest import PROCESSES
from tests.engine.samples import T0, FakeRegistry, valid_student

DAY = timedelta(days=1)
STUDENT_ID = 42
IN_COUNTY = {"kind": "in_county", "student_id": STUDENT_ID, "change_month": "2025-03", "reason": "随父母迁居",
             "county_code": "520199", "sending_school_code": "2152019901", "sending_school_name": "城关镇中心小学",
             "receiving_school_code": "2152019902", "receiving_school_name": "城关镇第一中学",
             "initiated_by": "sending"}
OUT_OF_COUNTY = {**IN_COUNTY, "kind": "out_of_county", "receiving_school_code": None,
                 "receiving_school_name": "遵义市某小学"}
INTO_COUNTY = {"kind": "into_county", "student_id": STUDENT_ID, "change_month": "2025-03", "reason": "",
               "county_code": "520199", "sending_school_name": "遵义市某小学",
               "receiving_school_code": "2152019902", "receiving_school_name": "城关镇第一中学",
               "initiated_by": "receiving"}
APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "转学年月有误"}
REJECT = {"decision": "reject", "comment": "未办理转学手续"}
CONFLICT = {"conflict": True, "matches": [7]}
PATHS = {"in_county": ["confirm_sending", "accept_receiving", "approve_transfer"],
         "out_of_county": ["confirm_sending", "approve_transfer"]}


class TransferRegistry(FakeRegistry):
    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().services(),
                "check_transfer": self._recorder("check_transfer", True),
                "transfer_student": self._recorder("transfer_student", "transferred"),
                "transfer_out": self._recorder("transfer_out", "transferred_out"),
                "activate_transfer_in": self._recorder("activate_transfer_in", "active")}


@pytest.fixture(scope="module")
def transfer() -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "student_transfer"]
    return load_definition(bpmn, forms)


@pytest.fixture
def registry() -> TransferRegistry:
    return TransferRegistry()


class Run:
    def __init__(self, definition: Definition, registry: FakeRegistry, data: dict) -> None:
        self.registry = registry
        self.hours = 0
        self.workflow: DefinedWorkflow = start(definition, data, services=registry.services(), now=T0)

    def ready(self) -> ReadyTask:
        tasks = ready_tasks(self.workflow)
        assert len(tasks) == 1, tasks
        return tasks[0]

    def act(self, task_id: str, data: dict) -> ReadyTask:
        task = self.ready()
        assert task.task_id == task_id, task.task_id
        self.hours += 1
        complete_task(self.workflow, task.guid, data, services=self.registry.services(),
                      now=T0 + timedelta(hours=self.hours))
        return task


def writes(registry: FakeRegistry) -> list[str]:
    return [n for n in registry.names() if n not in ("check_transfer", "check_duplicates", "mark_overdue")]


# 县内转学 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("initiated_by", ["sending", "receiving"])
def test_in_county_goes_sending_school_then_receiving_school_then_county(
        transfer: Definition, registry: TransferRegistry, initiated_by: str) -> None:
    run = Run(transfer, registry, {**IN_COUNTY, "initiated_by": initiated_by})

    confirm = run.act("confirm_sending", APPROVE)
    accept = run.act("accept_receiving", APPROVE)
    approve = run.act("approve_transfer", {"decision": "approve", "comment": "同意"})

    # Lanes are roles; the org unit of each step comes from the data.
    assert [(t.name, t.lane, t.org_unit, t.form, t.due) for t in (confirm, accept, approve)] == [
        ("转出学校确认", "school_principal", "2152019901", "review", "P3D"),
        ("转入学校接收", "school_principal", "2152019902", "review", "P3D"),
        ("县级审批转学", "county_reviewer", "520199", "review", "P5D"),
    ]
    assert is_finished(run.workflow)
    assert registry.calls == [("transfer_student", {"student_id": STUDENT_ID, "sending_school_code": "2152019901",
                                                    "receiving_school_code": "2152019902",
                                                    "change_month": "2025-03", "reason": "随父母迁居"})]


def test_out_of_county_skips_the_receiving_school_and_ends_transferred_out(
        transfer: Definition, registry: TransferRegistry) -> None:
    run = Run(transfer, registry, OUT_OF_COUNTY)
    run.act("confirm_sending", APPROVE)
    approve = run.act("approve_transfer", APPROVE)

    assert (approve.lane, approve.org_unit) == ("county_reviewer", "520199")
    assert is_finished(run.workflow)
    assert registry.calls == [("transfer_out", {"student_id": STUDENT_ID, "sending_school_code": "2152019901",
                                                "destination": "遵义市某小学", "change_month": "2025-03",
                                                "reason": "随父母迁居"})]


@pytest.mark.parametrize(("data", "steps"), [
    (IN_COUNTY, ["confirm_sending"]),
    (IN_COUNTY, ["confirm_sending", "accept_receiving"]),
    (IN_COUNTY, ["confirm_sending", "accept_receiving", "approve_transfer"]),
    (OUT_OF_COUNTY, ["confirm_sending"]),
    (OUT_OF_COUNTY, ["confirm_sending", "approve_transfer"]),
])
def test_a_reject_at_any_step_ends_without_changing_the_student(
        transfer: Definition, registry: TransferRegistry, data: dict, steps: list[str]) -> None:
    run = Run(transfer, registry, data)
    for step in steps[:-1]:
        run.act(step, APPROVE)
    run.act(steps[-1], REJECT)

    assert is_finished(run.workflow)
    assert writes(registry) == []


@pytest.mark.parametrize(("data", "steps"), [
    (IN_COUNTY, ["confirm_sending"]),
    (IN_COUNTY, ["confirm_sending", "accept_receiving"]),
    (IN_COUNTY, ["confirm_sending", "accept_receiving", "approve_transfer"]),
    (OUT_OF_COUNTY, ["confirm_sending", "approve_transfer"]),
])
def test_a_return_goes_to_the_initiating_registrar_and_starts_the_approvals_again(
        transfer: Definition, registry: TransferRegistry, data: dict, steps: list[str]) -> None:
    run = Run(transfer, registry, data)
    for step in steps[:-1]:
        run.act(step, APPROVE)
    run.act(steps[-1], RETURN)

    revise = run.ready()
    # No org_unit of its own: the instance's org unit, which is the initiating school.
    assert (revise.task_id, revise.lane, revise.org_unit, revise.form, revise.action) == (
        "revise_transfer", "school_registrar", None, "transfer_revision", None)
    assert revise.data["comment"] == RETURN["comment"]
    assert "退回意见：转学年月有误" in render_instructions(transfer, "revise_transfer", revise.data)
    run.act("revise_transfer", {"change_month": "2025-04"})

    assert registry.calls == [("check_transfer", {"student_id": STUDENT_ID, "kind": data["kind"],
                                                  "receiving_school_code": data["receiving_school_code"],
                                                  "change_month": "2025-04"})]
    confirm = run.ready()
    assert confirm.task_id == "confirm_sending" and confirm.data["change_month"] == "2025-04"
    assert confirm.data["reason"] == ""  # cleared in the revision: the form's default, so services may name it
    for step in PATHS[data["kind"]]:
        run.act(step, APPROVE)
    assert is_finished(run.workflow)
    assert writes(registry) == ["transfer_student" if data["kind"] == "in_county" else "transfer_out"]
    assert registry.calls[-1][1]["change_month"] == "2025-04"


@pytest.mark.parametrize("month", ["2025-13", "2025-3", ""])
def test_a_revision_needs_a_month(transfer: Definition, registry: TransferRegistry, month: str) -> None:
    run = Run(transfer, registry, IN_COUNTY)
    run.act("confirm_sending", RETURN)
    revise = run.ready()
    with pytest.raises(FormDataError):
        complete_task(run.workflow, revise.guid, {"change_month": month}, services=registry.services(), now=T0)
    assert run.ready().guid == revise.guid


def test_instructions_name_both_schools_and_the_change_month(transfer: Definition) -> None:
    text = render_instructions(transfer, "approve_transfer", IN_COUNTY)
    assert "城关镇中心小学 → 城关镇第一中学，转学年月 2025-03" in text
    assert "城关镇中心小学的补助计至 2025-03 的上月" in text and "转学原因：随父母迁居" in text
    out = render_instructions(transfer, "approve_transfer", OUT_OF_COUNTY)
    assert out.startswith("转出县外：城关镇中心小学 → 遵义市某小学") and "已转出" in out
    by_receiving = render_instructions(transfer, "confirm_sending", {**IN_COUNTY, "initiated_by": "receiving"})
    assert "本申请由转入学校发起" in by_receiving
    assert "本申请由转入学校发起" not in render_instructions(transfer, "confirm_sending", IN_COUNTY)


# 县外转入 -------------------------------------------------------------------------------------------


def test_into_county_certificate_then_check_then_principal_then_county(
        transfer: Definition, registry: TransferRegistry) -> None:
    run = Run(transfer, registry, INTO_COUNTY)

    attach = run.act("attach_certificate", {"transfer_certificate": {"certificate_no": "ZX-2025-001"}})
    review = run.act("review_transfer_in", APPROVE)
    confirm = run.act("confirm_transfer_in", APPROVE)

    assert [(t.lane, t.org_unit) for t in (attach, review, confirm)] == [
        ("school_registrar", "2152019902"), ("school_principal", "2152019902"), ("county_reviewer", "520199")]
    assert (attach.form, attach.action) == ("transfer_certificate", "check_transfer_certificate")
    assert is_finished(run.workflow)
    assert registry.calls == [("check_duplicates", {"student_id": STUDENT_ID}),
                              ("activate_transfer_in", {"student_id": STUDENT_ID, "change_month": "2025-03"})]


def test_into_county_duplicate_goes_to_the_county_first(transfer: Definition) -> None:
    registry = TransferRegistry([CONFLICT])
    run = Run(transfer, registry, INTO_COUNTY)
    run.act("attach_certificate", {"transfer_certificate": {}})

    resolve = run.ready()
    assert (resolve.task_id, resolve.lane, resolve.org_unit) == ("resolve_transfer_in_duplicate", "county_reviewer",
                                                                 "520199")
    assert "涉及 1 条记录" in render_instructions(transfer, resolve.task_id, resolve.data)
    run.act("resolve_transfer_in_duplicate", APPROVE)
    run.act("review_transfer_in", APPROVE)
    run.act("confirm_transfer_in", APPROVE)
    assert is_finished(run.workflow) and writes(registry) == ["activate_transfer_in"]


@pytest.mark.parametrize(("conflict", "steps"), [
    (True, ["resolve_transfer_in_duplicate"]),
    (False, ["review_transfer_in"]),
    (False, ["review_transfer_in", "confirm_transfer_in"]),
])
def test_into_county_return_goes_to_the_registrar_and_is_checked_again(
        transfer: Definition, conflict: bool, steps: list[str]) -> None:
    registry = TransferRegistry([CONFLICT] if conflict else [])
    run = Run(transfer, registry, INTO_COUNTY)
    run.act("attach_certificate", {"transfer_certificate": {}})
    for step in steps[:-1]:
        run.act(step, APPROVE)
    run.act(steps[-1], RETURN)

    revise = run.ready()
    assert (revise.task_id, revise.lane, revise.org_unit, revise.form, revise.action) == (
        "revise_transfer_in", "school_registrar", "2152019902", "student", "revise_transfer_in")
    run.act("revise_transfer_in", {"student": valid_student(school_code="2152019902")})

    assert registry.names() == ["check_duplicates", "check_duplicates"]
    assert run.ready().task_id == "review_transfer_in"
    assert "student" not in run.ready().data


@pytest.mark.parametrize(("conflict", "steps"), [
    (True, ["resolve_transfer_in_duplicate"]),
    (False, ["review_transfer_in"]),
    (False, ["review_transfer_in", "confirm_transfer_in"]),
])
def test_into_county_reject_voids_the_pending_record(transfer: Definition, conflict: bool, steps: list[str]) -> None:
    registry = TransferRegistry([CONFLICT] if conflict else [])
    run = Run(transfer, registry, INTO_COUNTY)
    run.act("attach_certificate", {"transfer_certificate": {}})
    for step in steps[:-1]:
        run.act(step, APPROVE)
    run.act(steps[-1], REJECT)

    assert is_finished(run.workflow)
    assert writes(registry) == ["void_intake"]
    assert registry.calls[-1] == ("void_intake", {"student_id": STUDENT_ID, "reason": REJECT["comment"]})


def test_the_certificate_task_takes_its_form_wrapped_for_the_action(transfer: Definition,
                                                                    registry: TransferRegistry) -> None:
    run = Run(transfer, registry, INTO_COUNTY)
    form = task_form(transfer, "attach_certificate")
    assert form is not None and form["required"] == ["transfer_certificate"]
    with pytest.raises(FormDataError):
        complete_task(run.workflow, run.ready().guid, {"certificate_no": "1"}, services=registry.services(), now=T0)
    assert "上传转学证明" in render_instructions(transfer, "attach_certificate", INTO_COUNTY)


# Deadlines ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "before", "step", "days"), [
    (IN_COUNTY, [], "confirm_sending", 3),
    (IN_COUNTY, ["confirm_sending"], "accept_receiving", 3),
    (IN_COUNTY, ["confirm_sending", "accept_receiving"], "approve_transfer", 5),
    (OUT_OF_COUNTY, ["confirm_sending"], "approve_transfer", 5),
])
def test_each_approval_is_marked_overdue_after_its_deadline_and_stays_open(
        transfer: Definition, registry: TransferRegistry, data: dict, before: list[str], step: str, days: int) -> None:
    run = Run(transfer, registry, data)
    for name in before:
        run.act(name, APPROVE)
    task = run.ready()
    opened = T0 + timedelta(hours=run.hours)
    assert task.task_id == step and next_timer_due(run.workflow) == opened + days * DAY

    advance(run.workflow, services=registry.services(), now=opened + days * DAY - timedelta(seconds=1))
    assert "mark_overdue" not in registry.names()
    advance(run.workflow, services=registry.services(), now=opened + days * DAY + timedelta(seconds=1))
    assert registry.calls[-1] == ("mark_overdue", {"task_id": step})
    assert [t.guid for t in ready_tasks(run.workflow)] == [task.guid]
    assert next_timer_due(run.workflow) is None

    run.act(step, APPROVE)  # late, but still decided
    assert ready_tasks(run.workflow) or is_finished(run.workflow)


def test_the_county_confirmation_of_a_transfer_in_is_marked_overdue(
        transfer: Definition, registry: TransferRegistry) -> None:
    run = Run(transfer, registry, INTO_COUNTY)
    run.act("attach_certificate", {"transfer_certificate": {}})
    run.act("review_transfer_in", APPROVE)
    opened = T0 + timedelta(hours=run.hours)
    advance(run.workflow, services=registry.services(), now=opened + 5 * DAY + timedelta(seconds=1))
    assert registry.calls[-1] == ("mark_overdue", {"task_id": "confirm_transfer_in"})
    run.act("confirm_transfer_in", APPROVE)
    assert is_finished(run.workflow)


def test_a_returned_step_gets_a_fresh_deadline(transfer: Definition, registry: TransferRegistry) -> None:
    run = Run(transfer, registry, IN_COUNTY)
    run.act("confirm_sending", RETURN)
    assert next_timer_due(run.workflow) is None  # the registrar's revision has a due date, no timer
    run.act("revise_transfer", {"change_month": "2025-04", "reason": "改为四月"})
    assert next_timer_due(run.workflow) == T0 + timedelta(hours=run.hours) + 3 * DAY
