from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from engine.definitions import Definition
from engine.errors import EngineError
from engine.runtime import complete_task, ready_tasks, start
from engine.task_data import plain_json
from tests.engine.samples import T0, FakeRegistry

NOT_PLAIN_JSON = [
    {"when": dt.date(2025, 9, 1)},
    {"when": dt.datetime(2025, 9, 1, tzinfo=dt.UTC)},
    {"nested": {"typename": "BpmnWorkflow"}},
    {"typename": "x"},
    {"pair": (1, 2)},
    {"ids": {1, 2}},
    {"amount": Decimal("4.5")},
    {"ratio": float("nan")},
    {1: "non-string key"},
    {"blob": b"bytes"},
]


@pytest.mark.parametrize("data", NOT_PLAIN_JSON)
def test_start_refuses_data_that_is_not_plain_json(intake: Definition, registry: FakeRegistry, data: dict) -> None:
    with pytest.raises(EngineError):
        start(intake, {"student_id": 1, **data}, services=registry.services(), now=T0)
    assert registry.calls == []


@pytest.mark.parametrize("data", NOT_PLAIN_JSON)
def test_complete_refuses_data_that_is_not_plain_json(intake: Definition, registry: FakeRegistry, data: dict) -> None:
    workflow = start(intake, {"student_id": 1}, services=registry.services(), now=T0)
    (task,) = ready_tasks(workflow)

    with pytest.raises(EngineError):
        complete_task(workflow, task.guid, {"decision": "approve", **data}, services=registry.services(), now=T0)
    assert ready_tasks(workflow)[0].guid == task.guid


def test_plain_json_copies_instead_of_sharing() -> None:
    original = {"ids": [1, 2], "nested": {"ok": True, "score": 1.5, "none": None}}

    copied = plain_json(original)

    assert copied == original
    assert copied["ids"] is not original["ids"]
