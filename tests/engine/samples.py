"""BPMN snippets, fakes and constants shared by the engine tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

ROLES = {
    "school_registrar",
    "school_principal",
    "township_officer",
    "county_reviewer",
    "county_aid_center",
    "county_admin",
    "process_admin",
    "auditor",
}
T0 = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)


class FakeRegistry:
    """Stands in for the registry actions the service tasks call; records every call."""

    def __init__(self, duplicate_checks: list[dict] | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self._duplicate_checks = list(duplicate_checks or [])

    def services(self) -> dict[str, Callable[[dict], Any]]:
        return {
            "check_duplicates": self.check_duplicates,
            "void_intake": self._recorder("void_intake", {"status": "voided"}),
            "activate_student": self._recorder("activate_student", {"status": "active"}),
            "mark_overdue": self._recorder("mark_overdue", None),
            "import_batch": self._recorder("import_batch", {"imported": 1}),
            "close_batch": self._recorder("close_batch", "return"),
        }

    def check_duplicates(self, params: dict) -> dict:
        self.calls.append(("check_duplicates", params))
        if self._duplicate_checks:
            return self._duplicate_checks.pop(0)
        return {"conflict": False, "matches": []}

    def _recorder(self, name: str, result: Any) -> Callable[[dict], Any]:
        def call(params: dict) -> Any:
            self.calls.append((name, params))
            return result

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def valid_student(**changes: Any) -> dict:
    student = {
        "name": "王小明",
        "sex": "1",
        "birth_date": "2016-05-04",
        "id_type": "1",
        "id_number": "11010520160504001X",
        "ethnicity": "01",
        "school_code": "2152000001",
        "grade": 3,
        "class_name": "三年级（1）班",
        "enrolled_month": "2022-09",
        "boarding_mode": "2",
    }
    student.update(changes)
    return student


REVIEW_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"decision": {"type": "string"}, "comment": {"type": "string"}},
    "required": ["decision"],
    "additionalProperties": False,
}


def probe_bpmn(
    body: str,
    *,
    lanes: dict[str, list[str]] | None = None,
    process_id: str = "probe",
    executable: str = "true",
) -> bytes:
    """A one-process BPMN document around `body` (flow nodes and flows), with the given lanes."""
    lane_xml = ""
    if lanes:
        lane_xml = "<bpmn:laneSet id=\"LaneSet_1\">" + "".join(
            f'<bpmn:lane id="Lane_{name}" name="{name}">'
            + "".join(f"<bpmn:flowNodeRef>{node}</bpmn:flowNodeRef>" for node in nodes)
            + "</bpmn:lane>"
            for name, nodes in lanes.items()
        ) + "</bpmn:laneSet>"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="Definitions_probe" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{process_id}" name="探针流程" isExecutable="{executable}">
    {lane_xml}
    {body}
  </bpmn:process>
</bpmn:definitions>""".encode()


def user_task(task_id: str, *, form: str | None = "review", name: str = "审核", extra: str = "") -> str:
    props = f'<spiffworkflow:property name="form" value="{form}"/>' if form else ""
    return (
        f'<bpmn:userTask id="{task_id}" name="{name}"><bpmn:extensionElements>'
        f"<spiffworkflow:properties>{props}</spiffworkflow:properties>{extra}"
        f"</bpmn:extensionElements></bpmn:userTask>"
    )


def script_task(task_id: str, script: str) -> str:
    return f'<bpmn:scriptTask id="{task_id}" name="计算"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>'


def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}"/>'
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}</bpmn:conditionExpression>'
        f"</bpmn:sequenceFlow>"
    )


def script_then_review(script: str) -> bytes:
    """start → scriptTask `compute` → userTask `look` (lane county_reviewer) → end."""
    return probe_bpmn(
        '<bpmn:startEvent id="start"/>'
        + script_task("compute", script)
        + user_task("look")
        + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "compute")
        + flow("f2", "compute", "look")
        + flow("f3", "look", "end"),
        lanes={"county_reviewer": ["start", "compute", "look", "end"]},
    )
