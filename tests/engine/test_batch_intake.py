"""processes/batch_intake.bpmn on the engine alone: who acts, and what the registry is asked to do."""

from __future__ import annotations

import pytest

from engine.definitions import Definition, load_definition, read_process_dir
from engine.runtime import complete_task, is_finished, ready_tasks, start
from engine.templates import render_instructions
from tests.engine.conftest import PROCESSES
from tests.engine.samples import T0, FakeRegistry


@pytest.fixture(scope="module")
def batch_intake() -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "batch_intake"]
    return load_definition(bpmn, forms)


def run(definition: Definition, registry: FakeRegistry, *decisions: dict) -> list[str]:
    workflow = start(definition, {"batch_id": 7, "file_name": "名单.xlsx", "rows_total": 3, "rows_new": 2},
                     services=registry.services(), now=T0)
    lanes = []
    for decision in decisions:
        (task,) = ready_tasks(workflow)
        lanes.append(f"{task.task_id}@{task.lane}")
        complete_task(workflow, task.guid, decision, services=registry.services(), now=T0)
    assert is_finished(workflow)
    return lanes


def test_principal_then_county_confirm_imports_the_batch(batch_intake: Definition, registry: FakeRegistry) -> None:
    lanes = run(batch_intake, registry, {"decision": "approve"}, {"decision": "approve", "excluded_rows": "3-4"})
    assert lanes == ["review_batch@school_principal", "confirm_batch@county_reviewer"]
    assert registry.calls == [("import_batch", {"batch_id": 7, "excluded_rows": "3-4"})]


def test_excluded_rows_left_out_take_the_forms_default(batch_intake: Definition, registry: FakeRegistry) -> None:
    run(batch_intake, registry, {"decision": "approve"}, {"decision": "approve"})
    assert registry.calls == [("import_batch", {"batch_id": 7, "excluded_rows": ""})]


@pytest.mark.parametrize("decision", ["return", "reject"])
def test_principal_or_county_saying_no_closes_the_batch(batch_intake: Definition, registry: FakeRegistry,
                                                        decision: str) -> None:
    run(batch_intake, registry, {"decision": decision, "comment": "请核对班级"})
    assert registry.calls == [("close_batch", {"batch_id": 7, "decision": decision, "comment": "请核对班级"})]
    registry.calls.clear()
    run(batch_intake, registry, {"decision": "approve"}, {"decision": decision, "comment": "重复学生过多"})
    assert registry.calls == [("close_batch", {"batch_id": 7, "decision": decision, "comment": "重复学生过多"})]


def test_instructions_name_the_counts(batch_intake: Definition, registry: FakeRegistry) -> None:
    text = render_instructions(batch_intake, "review_batch", {"batch_id": 7, "file_name": "名单.xlsx",
                                                              "rows_total": 3, "rows_new": 2, "rows_invalid": 1,
                                                              "rows_conflict": 0, "rows_existing": 0})
    assert "名单.xlsx" in text and "可入库 2 行" in text and "/imports/7" in text
