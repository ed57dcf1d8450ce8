"""processes/annual_cycle.bpmn on the engine alone: the timer start, the three school steps, the county's
return loop and the filing of the roster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.definitions import Definition, load_definition, read_process_dir
from engine.errors import FormDataError
from engine.forms import submission
from engine.runtime import advance, complete_task, dump, is_finished, next_timer_due, ready_tasks, restore, start
from engine.templates import render_instructions
from engine.workflow import DefinedWorkflow
from tests.engine.conftest import PROCESSES
from tests.engine.samples import FakeRegistry

START = datetime(2026, 8, 31, 16, 0, tzinfo=UTC)  # 2026-09-01 0:00 in Guizhou
DATA = {"school_code": "2152019901", "school_name": "演示小学", "county_code": "520199", "school_year": 2026,
        "cycle_start": "2026-09-01T00:00:00+08:00"}
# Each school step's form goes to its action (registry/flows/annual_cycle.py), wrapped in the form's name.
NEW_STUDENTS = {"cycle_new_students": {"confirmed": True}}
ROSTER = {"cycle_roster": {"confirmed": True, "scan": [31]}}
REPORT = {"cycle_report": {"confirmed": True}}


class CycleRegistry(FakeRegistry):
    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().services(), "file_cycle_roster": self._recorder("file_cycle_roster", True)}


@pytest.fixture(scope="module")
def definition() -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "annual_cycle"]
    return load_definition(bpmn, forms)


@pytest.fixture
def registry() -> CycleRegistry:
    return CycleRegistry()


def open_tasks(workflow: DefinedWorkflow) -> dict[str, str | None]:
    return {t.task_id: t.lane for t in ready_tasks(workflow)}


def do(workflow: DefinedWorkflow, registry: CycleRegistry, task_id: str, data: dict, at: datetime) -> None:
    (task,) = [t for t in ready_tasks(workflow) if t.task_id == task_id]
    complete_task(workflow, task.guid, data, services=registry.services(), now=at)


def started(definition: Definition, registry: CycleRegistry) -> DefinedWorkflow:
    workflow = start(definition, dict(DATA), services=registry.services(), now=START - timedelta(days=20))
    advance(workflow, services=registry.services(), now=START + timedelta(seconds=1))
    return workflow


def test_it_waits_on_its_timer_start_event_until_the_county_start_day(definition: Definition,
                                                                       registry: CycleRegistry) -> None:
    workflow = start(definition, dict(DATA), services=registry.services(), now=START - timedelta(days=20))
    assert ready_tasks(workflow) == [] and next_timer_due(workflow) == START
    restored = restore(definition, dump(workflow), services=registry.services())
    advance(restored, services=registry.services(), now=START - timedelta(seconds=1))
    assert ready_tasks(restored) == []
    advance(restored, services=registry.services(), now=START)
    assert open_tasks(restored) == {"enter_new_students": "school_registrar", "upload_roster": "school_registrar",
                                    "submit_report": "school_registrar"}
    assert next_timer_due(restored) is None


def test_the_deadlines_are_in_the_bpmn(definition: Definition) -> None:
    tasks = definition.user_tasks
    assert (tasks["enter_new_students"].due, tasks["enter_new_students"].due_from) == ("--09-10", "cycle_start")
    assert (tasks["upload_roster"].due, tasks["submit_report"].due) == ("--09-15", "--09-15")
    assert tasks["review_cycle"].org_unit == "county_code" and tasks["review_cycle"].lane == "county_reviewer"


def test_accepted_roster_and_report_are_filed_and_the_cycle_ends(definition: Definition,
                                                                 registry: CycleRegistry) -> None:
    workflow = started(definition, registry)
    day = START + timedelta(days=3)
    do(workflow, registry, "upload_roster", ROSTER, day)
    assert "review_cycle" not in open_tasks(workflow)  # the report is still missing
    do(workflow, registry, "submit_report", REPORT, day)
    assert set(open_tasks(workflow)) == {"enter_new_students", "review_cycle"}
    (review,) = [t for t in ready_tasks(workflow) if t.task_id == "review_cycle"]
    assert review.org_unit == "520199"
    do(workflow, registry, "review_cycle", {"decision": "approve"}, day)
    assert registry.calls == [("file_cycle_roster", {"school_code": "2152019901"})]
    assert not is_finished(workflow)  # new students are not confirmed yet
    do(workflow, registry, "enter_new_students",
       {"cycle_new_students": {"confirmed": True, "comment": "新生 35 人已全部录入"}}, day)
    assert is_finished(workflow)


def test_a_return_reopens_roster_and_report_with_the_reason(definition: Definition,
                                                            registry: CycleRegistry) -> None:
    workflow = started(definition, registry)
    day = START + timedelta(days=3)
    do(workflow, registry, "enter_new_students", NEW_STUDENTS, day)
    do(workflow, registry, "upload_roster", ROSTER, day)
    do(workflow, registry, "submit_report", REPORT, day)
    do(workflow, registry, "review_cycle", {"decision": "return", "comment": "三年级（2）班缺监护人签字"}, day)
    assert set(open_tasks(workflow)) == {"upload_roster", "submit_report"}
    (roster,) = [t for t in ready_tasks(workflow) if t.task_id == "upload_roster"]
    assert "县营养办退回意见：三年级（2）班缺监护人签字" in render_instructions(definition, "upload_roster", roster.data)
    do(workflow, registry, "upload_roster", ROSTER, day)
    do(workflow, registry, "submit_report", REPORT, day)
    do(workflow, registry, "review_cycle", {"decision": "approve"}, day)
    assert is_finished(workflow) and registry.names() == ["file_cycle_roster"]


@pytest.mark.parametrize(("task_id", "data"), [
    ("upload_roster", {}), ("upload_roster", {"cycle_roster": {"confirmed": False, "scan": [31]}}),
    ("upload_roster", {"cycle_roster": {"confirmed": True}}), ("upload_roster", {"cycle_roster": {"confirmed": True, "scan": []}}),
    ("submit_report", {"cycle_report": {}}), ("enter_new_students", {"confirmed": True}),
    ("review_cycle", {"decision": "return"}), ("review_cycle", {"decision": "return", "comment": "  "}),
    ("review_cycle", {"decision": "reject", "comment": "不行"}),
])
def test_bad_submissions_are_refused(definition: Definition, task_id: str, data: dict) -> None:
    with pytest.raises(FormDataError):
        submission(definition, task_id, data)
