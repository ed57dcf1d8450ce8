"""key_field_change, status_change and data_release carry BPMN DI for every element, so the diagram viewer draws them whole."""

from __future__ import annotations

import pytest
from lxml import etree

from engine.definitions import read_process_dir
from tests.engine.conftest import PROCESSES

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "di": "http://www.omg.org/spec/DD/20100524/DI"}


@pytest.mark.parametrize("process_id", ["key_field_change", "status_change", "data_release"])
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
    assert all(len(e.findall("di:waypoint", NS)) >= 2 for e in root.iterfind(".//bpmndi:BPMNEdge", NS))
