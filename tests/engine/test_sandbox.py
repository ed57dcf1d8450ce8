from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from engine.definitions import Definition, load_definition
from engine.errors import DefinitionError, ScriptError
from engine.runtime import ready_tasks, start
from engine.scripting import ScriptEngine
from engine.templates import render_instructions
from tests.engine.samples import (
    REVIEW_FORM,
    T0,
    FakeRegistry,
    flow,
    probe_bpmn,
    script_then_review,
    user_task,
)


def fake_task(data: dict[str, Any]) -> Any:
    return SimpleNamespace(data=data, task_spec=SimpleNamespace(bpmn_id="probe_task", name="probe_task"))


def engine() -> ScriptEngine:
    return ScriptEngine({}, T0)


ESCAPE_EXPRESSIONS = [
    "__import__('os')",
    "().__class__.__base__.__subclasses__()",
    "[].__class__.__mro__",
    "getattr(x, '__globals__')",
    "getattr(len, '__self__')",
    "'{0.__class__}'.format(1)",
    "str.format('{0.__class__}', 1)",
    "'{x.__class__}'.format_map({'x': 1})",
    "open('/etc/passwd').read()",
    "type(x)",
    "eval('1')",
    "exec('1')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "vars()",
    "x.gi_frame",
    "(i for i in []).gi_frame.f_globals",
]

ESCAPE_SCRIPTS = [
    "import os",
    "import os\nos.system('true')",
    "from os import path",
    "open('/etc/passwd')",
    "f = open('/etc/passwd', 'w')",
    "class Sneaky:\n    pass",
    "def f():\n    pass\ng = f.__globals__",
    "x.__class__ = int",
    "print('hi')",
    "result = ().__class__.__base__.__subclasses__()",
    "s = '{0.__init__.__globals__}'.format(len)",
]


@pytest.mark.parametrize("expression", ESCAPE_EXPRESSIONS)
def test_escaping_expressions_fail_with_script_error(expression: str) -> None:
    with pytest.raises(ScriptError) as caught:
        engine().evaluate(fake_task({"x": lambda: None}), expression)
    assert caught.value.element_id == "probe_task"


@pytest.mark.parametrize("script", ESCAPE_SCRIPTS)
def test_escaping_scripts_fail_with_script_error(script: str) -> None:
    with pytest.raises(ScriptError) as caught:
        engine().execute(fake_task({"x": 1}), script)
    assert caught.value.element_id == "probe_task"


def test_ordinary_conditions_work() -> None:
    data = {"decision": "approve", "duplicate_check": {"conflict": True, "matches": [3, 4]}}

    assert engine().evaluate(fake_task(data), 'decision == "approve"') is True
    assert engine().evaluate(fake_task(data), 'duplicate_check["conflict"]') is True
    assert engine().evaluate(fake_task(data), "len(duplicate_check['matches']) > 1 and max(duplicate_check['matches']) == 4")
    assert engine().evaluate(fake_task(data), "duplicate_check.get('missing', 'x')") == "x"


def test_ordinary_scripts_work() -> None:
    data: dict[str, Any] = {"items": ["b", "a", "b"], "pairs": [[1, 2], [3, 4]]}
    script = "\n".join(
        [
            "n = len(items); ok = n > 0",
            "counts = {}",
            "for item in items:",
            "    counts[item] = counts.get(item, 0) + 1",
            "total = 0",
            "for a, b in pairs:",
            "    total += a * b",
            "names = sorted(set(items))",
            "upper = [s.upper() for s in names]",
            "summary = '%s: %d' % ('n', n)",
            "first, *rest = items",
            "flags = [any(x == 'a' for x in items), all(items), min(total, 100), sum([1, 2])]",
            "del pairs",
        ]
    )
    engine().execute(fake_task(data), script)

    assert data == {
        "items": ["b", "a", "b"],
        "n": 3,
        "ok": True,
        "counts": {"b": 2, "a": 1},
        "total": 14,
        "names": ["a", "b"],
        "upper": ["A", "B"],
        "summary": "n: 3",
        "first": "b",
        "rest": ["a", "b"],
        "flags": [True, True, 14, 3],
        "item": "b",
        "a": 3,
        "b": 4,
    }


def test_script_leaving_a_non_json_value_fails() -> None:
    with pytest.raises(ScriptError):
        engine().execute(fake_task({"items": [1]}), "kept = set(items)")


def test_script_task_runs_in_the_sandbox_during_engine_steps(registry: FakeRegistry) -> None:
    definition = load_definition(script_then_review("n = len(items); ok = n > 0"), {"review": REVIEW_FORM})

    workflow = start(definition, {"items": [1, 2]}, services={}, now=T0)

    (task,) = ready_tasks(workflow)
    assert task.data == {"items": [1, 2], "n": 2, "ok": True}


def test_escape_that_compiles_fails_at_run_time_naming_the_script_task() -> None:
    definition = load_definition(script_then_review("secret = open('/etc/passwd').read()"), {"review": REVIEW_FORM})

    with pytest.raises(ScriptError) as caught:
        start(definition, {}, services={}, now=T0)
    assert caught.value.element_id == "compute"


def test_escape_the_compiler_refuses_is_caught_when_the_definition_is_loaded() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(script_then_review("x = ().__class__.__base__.__subclasses__()"), {"review": REVIEW_FORM})
    assert [e["element_id"] for e in caught.value.errors] == ["compute"]


def test_escaping_condition_fails_at_run_time_naming_the_gateway() -> None:
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="choose" default="f_default"/>'
        + user_task("look")
        + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "choose")
        + flow("f_probe", "choose", "end", "open('/etc/passwd')")
        + flow("f_default", "choose", "look")
        + flow("f3", "look", "end"),
        lanes={"county_reviewer": ["start", "choose", "look", "end"]},
    )
    definition = load_definition(bpmn, {"review": REVIEW_FORM})

    with pytest.raises(ScriptError) as caught:
        start(definition, {}, services={}, now=T0)
    assert caught.value.element_id == "choose"


def test_unknown_service_operator_fails_naming_the_service_task(intake: Definition, registry: FakeRegistry) -> None:
    services = registry.services()
    del services["check_duplicates"]

    with pytest.raises(ScriptError) as caught:
        start(intake, {"student_id": 1}, services=services, now=T0)
    assert caught.value.element_id == "check_duplicates"
    assert "check_duplicates" in caught.value.message


def test_failing_service_keeps_its_cause(intake: Definition) -> None:
    class Conflict(Exception):
        pass

    def refuse(params: dict) -> dict:
        raise Conflict("student 1 is locked")

    with pytest.raises(ScriptError) as caught:
        start(intake, {"student_id": 1}, services={"check_duplicates": refuse}, now=T0)
    assert caught.value.element_id == "check_duplicates"
    assert isinstance(caught.value.__cause__, Conflict)


@pytest.mark.parametrize("result", [{"when": dt.date(2025, 9, 1)}, {"typename": "BpmnWorkflow"}, {1, 2}])
def test_service_result_that_is_not_plain_json_fails(intake: Definition, result: Any) -> None:
    with pytest.raises(ScriptError) as caught:
        start(intake, {"student_id": 1}, services={"check_duplicates": lambda params: result}, now=T0)
    assert caught.value.element_id == "check_duplicates"


def instructions_definition(template: str) -> Definition:
    extra = f"<spiffworkflow:instructionsForEndUser>{template}</spiffworkflow:instructionsForEndUser>"
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + user_task("look", extra=extra) + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "end"),
        lanes={"county_reviewer": ["start", "look", "end"]},
    )
    return load_definition(bpmn, {"review": REVIEW_FORM})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ student_id.__class__.__base__ }}",
    ],
)
def test_instruction_templates_cannot_escape_the_jinja_sandbox(template: str) -> None:
    definition = instructions_definition(template.replace("'", "&apos;"))

    with pytest.raises(ScriptError) as caught:
        render_instructions(definition, "look", {"student_id": 1})
    assert caught.value.element_id == "look"


def test_instruction_templates_render_data_and_tolerate_missing_values() -> None:
    definition = instructions_definition("学生 {{ student_id }}{% if comment %}：{{ comment }}{% endif %}")

    assert render_instructions(definition, "look", {"student_id": 7}) == "学生 7"
    assert render_instructions(definition, "look", {"student_id": 7, "comment": "请核对"}) == "学生 7：请核对"
