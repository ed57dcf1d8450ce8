from __future__ import annotations

from pathlib import Path

import pytest

from engine.definitions import Definition, load_definition, read_process_dir
from tests.engine.samples import FakeRegistry

PROCESSES = Path(__file__).resolve().parents[2] / "processes"


@pytest.fixture(scope="session")
def intake_source() -> tuple[bytes, dict[str, dict]]:
    ((_, bpmn, forms),) = [entry for entry in read_process_dir(PROCESSES) if entry[0] == "student_intake"]
    return bpmn, forms


@pytest.fixture(scope="session")
def intake(intake_source: tuple[bytes, dict[str, dict]]) -> Definition:
    bpmn, forms = intake_source
    return load_definition(bpmn, forms)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()
