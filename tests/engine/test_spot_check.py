"""processes/spot_check.bpmn and spot_check_school.bpmn on the engine alone: every path, who acts where,
what the registry is asked to do, and the deadlines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from lxml import etree

from engine.definitions import Definition, load_definition, read_process_dir
from engine.errors import FormDataError
from engine.runtime import ReadyTask, advance, complete_task, is_finished, next_timer_due, ready_tasks, start
from engine.templates import render_instructions
from engine.workflow import DefinedWorkflow
from tests.engine.conftest import PROCESSES
from tests.engine.samples import T0, FakeRegistry

DAY = timedelta(days=1)
CHECK = {"spot_check_id": 7, "county_code": "520199", "title": "演示县2025-09营养改善计划实名制抽查",
         "month": "2025-09"}
SCHOOL = {"check_school_id": 11, "spot_check_id": 7, "school_code": "2152019901", "school_name": "城关镇中心小学",
          "county_code": "520199", "title": "演示县2025-09营养改善计划实名制抽查", "month": "2025-09", "students": 5}
EVIDENCE = {"spot_check_evidence": {"students": [{"student_id": 1, "present": True, "scan_attachment_id": 3}]}}
FINDINGS = {"spot_check_findings": {"students": [{"student_id": 1, "finding": "absent", "note": "长期不在校"}]}}
RECTIFICATION = {"spot_check_rectification": {"report": "已核实并办理辍学", "students": [{"student_id": 1, "measure": "办理辍学"}]}}
APPROVE = {"decision": "approve"}
RETURN = {"decision": "return", "comment": "未附辍学审批材料"}


class SpotCheckRegistry(FakeRegistry):
    def __init__(self, findings: int = 0) -> None:
        super().__init__()
        self.findings = findings

    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {**super().services(),
                "draw_spot_check_sample": self._recorder("draw_spot_check_sample",
                                                         {"seed": "20250901", "schools": 2, "students": 10}),
                "open_spot_check_schools": self._recorder("open_spot_check_schools", 2),
                "count_spot_check_findings": self.count,
                "record_spot_check_verification": self.verification,
                "close_spot_check_school": self._recorder("close_spot_check_school", True)}

    def count(self, params: dict) -> int:
        self.calls.append(("count_spot_check_findings", params))
        return self.findings

    def verification(self, params: dict) -> str:
        self.calls.append(("record_spot_check_verification", params))
        return str(params["decision"])


def _definition(stem: str) -> Definition:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == stem]
    return load_definition(bpmn, forms)


@pytest.fixture(scope="module")
def check() -> Definition:
    return _definition("spot_check")


@pytest.fixture(scope="module")
def school() -> Definition:
    return _definition("spot_check_school")


class Run:
    def __init__(self, definition: Definition, registry: SpotCheckRegistry, data: dict) -> None:
        self.definition = definition
        self.registry = registry
        self.now = T0
        self.workflow: DefinedWorkflow = start(definition, data, services=registry.services(), now=T0)

    def ready(self) -> ReadyTask:
        tasks = ready_tasks(self.workflow)
        assert len(tasks) == 1, tasks
        return tasks[0]

    def act(self, task_id: str, data: dict, *, after: timedelta = timedelta(hours=1)) -> ReadyTask:
        task = self.ready()
        assert task.task_id == task_id, task.task_id
        self.now += after
        complete_task(self.workflow, task.guid, data, services=self.registry.services(), now=self.now)
        return task

    def advance(self, to: datetime) -> None:
        advance(self.workflow, services=self.registry.services(), now=to)


# spot_check ---------------------------------------------------------------------------------------------


def test_the_check_draws_then_opens_the_schools_then_waits_for_the_auditors_conclusion(check: Definition) -> None:
    registry = SpotCheckRegistry()
    run = Run(check, registry, CHECK)

    assert registry.calls == [("draw_spot_check_sample", {"spot_check_id": 7}),
                              ("open_spot_check_schools", {"spot_check_id": 7})]
    conclude = run.ready()
    assert (conclude.task_id, conclude.lane, conclude.org_unit, conclude.form, conclude.action, conclude.due) == (
        "conclude_check", "auditor", "520199", "spot_check_conclusion", "conclude_spot_check", None)
    text = render_instructions(check, "conclude_check", conclude.data)
    assert "随机种子 20250901" in text and "共抽取 2 所学校、10 名学生" in text
    assert next_timer_due(run.workflow) is None

    run.act("conclude_check", {"spot_check_conclusion": {"conclusion": "抽查 2 所学校，未发现问题"}})
    assert is_finished(run.workflow)
    # The conclusion goes to the registry action, never into the workflow data.
    assert not any("conclusion" in t.data for t in run.workflow.get_tasks())


def test_the_conclusion_is_required(check: Definition) -> None:
    registry = SpotCheckRegistry()
    run = Run(check, registry, CHECK)
    task = run.ready()
    with pytest.raises(FormDataError):
        complete_task(run.workflow, task.guid, {"spot_check_conclusion": {}}, services=registry.services(), now=T0)
    assert run.ready().guid == task.guid


# spot_check_school ---------------------------------------------------------------------------------------


def test_without_findings_the_school_closes_after_evidence_and_findings(school: Definition) -> None:
    registry = SpotCheckRegistry(findings=0)
    run = Run(school, registry, SCHOOL)

    evidence = run.act("provide_evidence", EVIDENCE)
    findings = run.act("record_findings", {"spot_check_findings": {"students": [{"student_id": 1, "finding": "none"}]}})

    assert [(t.lane, t.org_unit, t.form, t.action, t.due) for t in (evidence, findings)] == [
        ("school_registrar", "2152019901", "spot_check_evidence", "submit_spot_check_evidence", "P10D"),
        ("auditor", "520199", "spot_check_findings", "record_spot_check_findings", None),
    ]
    assert is_finished(run.workflow)
    assert registry.calls == [("count_spot_check_findings", {"check_school_id": 11}),
                              ("close_spot_check_school", {"check_school_id": 11})]


def test_findings_send_the_school_to_rectification_and_an_accepted_one_closes_it(school: Definition) -> None:
    registry = SpotCheckRegistry(findings=1)
    run = Run(school, registry, SCHOOL)
    run.act("provide_evidence", EVIDENCE)
    run.act("record_findings", FINDINGS)

    rectify = run.act("rectify", RECTIFICATION)
    verify = run.act("verify_rectification", APPROVE)

    assert [(t.lane, t.org_unit, t.form, t.action, t.due) for t in (rectify, verify)] == [
        ("school_principal", "2152019901", "spot_check_rectification", "submit_spot_check_rectification", "P15D"),
        ("auditor", "520199", "spot_check_verification", None, None),
    ]
    assert "1 名学生有问题" in render_instructions(school, "rectify", rectify.data)
    assert "验收意见" not in render_instructions(school, "rectify", rectify.data)
    assert is_finished(run.workflow)
    assert registry.names() == ["count_spot_check_findings", "record_spot_check_verification", "close_spot_check_school"]
    assert registry.calls[1] == ("record_spot_check_verification", {"check_school_id": 11, "decision": "approve",
                                                                     "comment": ""})


def test_a_returned_rectification_goes_back_to_the_principal_with_the_comment(school: Definition) -> None:
    registry = SpotCheckRegistry(findings=2)
    run = Run(school, registry, SCHOOL)
    run.act("provide_evidence", EVIDENCE)
    run.act("record_findings", FINDINGS)
    run.act("rectify", RECTIFICATION)
    run.act("verify_rectification", RETURN)

    again = run.ready()
    assert (again.task_id, again.lane, again.org_unit) == ("rectify", "school_principal", "2152019901")
    text = render_instructions(school, "rectify", again.data)
    assert text.startswith("验收意见（退回重新整改）：未附辍学审批材料")
    run.act("rectify", RECTIFICATION)
    run.act("verify_rectification", APPROVE)

    assert is_finished(run.workflow)
    verdicts = [p["decision"] for n, p in registry.calls if n == "record_spot_check_verification"]
    assert verdicts == ["return", "approve"]
    assert registry.names()[-1] == "close_spot_check_school"


def test_a_return_needs_a_comment(school: Definition) -> None:
    registry = SpotCheckRegistry(findings=1)
    run = Run(school, registry, SCHOOL)
    run.act("provide_evidence", EVIDENCE)
    run.act("record_findings", FINDINGS)
    run.act("rectify", RECTIFICATION)
    verify = run.ready()
    for bad in ({"decision": "return"}, {"decision": "return", "comment": "  "}, {"decision": "reject", "comment": "x"}):
        with pytest.raises(FormDataError):
            complete_task(run.workflow, verify.guid, bad, services=registry.services(), now=T0)
    assert run.ready().guid == verify.guid


def test_evidence_is_marked_overdue_after_ten_days_and_stays_open(school: Definition) -> None:
    registry = SpotCheckRegistry()
    run = Run(school, registry, SCHOOL)
    assert next_timer_due(run.workflow) == T0 + 10 * DAY

    run.advance(T0 + 10 * DAY - timedelta(seconds=1))
    assert "mark_overdue" not in registry.names()
    run.advance(T0 + 10 * DAY + timedelta(seconds=1))
    assert registry.calls == [("mark_overdue", {"task_id": "provide_evidence"})]
    assert run.ready().task_id == "provide_evidence"
    assert next_timer_due(run.workflow) is None


def test_each_rectification_round_has_fifteen_days_from_when_it_opens(school: Definition) -> None:
    registry = SpotCheckRegistry(findings=1)
    run = Run(school, registry, SCHOOL)
    run.act("provide_evidence", EVIDENCE)
    run.act("record_findings", FINDINGS, after=2 * DAY)
    opened = run.now
    assert next_timer_due(run.workflow) == opened + 15 * DAY

    run.advance(opened + 15 * DAY + timedelta(seconds=1))
    assert registry.calls[-1] == ("mark_overdue", {"task_id": "rectify"})
    run.act("rectify", RECTIFICATION, after=16 * DAY)
    assert next_timer_due(run.workflow) is None  # the auditor's verification has no deadline
    run.act("verify_rectification", RETURN, after=3 * DAY)
    reopened = run.now
    assert next_timer_due(run.workflow) == reopened + 15 * DAY


def test_instructions_name_the_school_and_the_sample(school: Definition) -> None:
    assert "本校被抽中 5 名学生（核查月份 2025-09）" in render_instructions(school, "provide_evidence", SCHOOL)
    assert render_instructions(school, "record_findings", SCHOOL).startswith("城关镇中心小学已提交 5 名抽查学生的材料")


NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "di": "http://www.omg.org/spec/DD/20100524/DI"}


@pytest.mark.parametrize("process_id", ["spot_check", "spot_check_school"])
def test_every_element_is_drawn(process_id: str) -> None:
    ((_, bpmn, _),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == process_id]
    root = etree.fromstring(bpmn)
    process = root.find("bpmn:process", NS)
    assert process is not None
    drawable = {
        el.get("id") for el in process.iter()
        if isinstance(el.tag, str) and el is not process and el.get("id")
        and etree.QName(el).namespace == NS["bpmn"]
        and etree.QName(el).localname not in {"laneSet", "timerEventDefinition"}
    } | {p.get("id") for p in root.iterfind("bpmn:collaboration/bpmn:participant", NS)}
    shapes = {s.get("bpmnElement") for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    assert drawable == shapes | edges
