from __future__ import annotations

from pathlib import Path

import pytest

from engine.definitions import validate
from tests.engine.samples import ROLES

INTERCHANGE = Path("/work/shared/bpmn-interchange")
FILES = sorted(INTERCHANGE.glob("*.bpmn"))


@pytest.mark.skipif(not FILES, reason="the OMG interchange reference files are not present")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_modelling_tool_exports_get_a_structured_answer(path: Path) -> None:
    result = validate(path.read_bytes(), roles=ROLES, forms={})

    assert set(result) == {"valid", "processes", "errors", "warnings"}
    assert result["processes"] and all(set(p) == {"id", "name"} for p in result["processes"])
    for entry in result["errors"] + result["warnings"]:
        assert set(entry) == {"element_id", "message"}
        assert " / " in entry["message"]
        assert "internal error" not in entry["message"]
    # None of them is a mealroll process (no lanes named by role, no forms), so each is refused
    # with at least one message that names an element of the file.
    assert result["valid"] is False
    assert any(e["element_id"] for e in result["errors"])
