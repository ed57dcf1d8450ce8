from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from lxml import etree

from engine.definitions import (
    Definition,
    check_file_stem,
    content_sha256,
    load_definition,
    load_process_dir,
    read_process_dir,
    validate,
)
from engine.errors import DefinitionError
from tests.engine.conftest import PROCESSES
from tests.engine.samples import REVIEW_FORM, ROLES, flow, probe_bpmn, script_then_review, user_task

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="probe" isExecutable="true" name="&lol9;"><bpmn:startEvent id="start"/></bpmn:process>
</bpmn:definitions>"""


def one_task(task: str, *, lanes: dict[str, list[str]] | None = None, extra_body: str = "") -> bytes:
    body = (
        '<bpmn:startEvent id="start"/>' + task + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "end") + extra_body
    )
    return probe_bpmn(body, lanes={"county_reviewer": ["start", "look", "end"]} if lanes is None else lanes)


def problems(bpmn: bytes, forms: dict | None = None) -> list[dict]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(bpmn, {"review": REVIEW_FORM} if forms is None else forms)
    assert caught.value.errors
    return caught.value.errors


def test_student_intake_loads_with_lanes_forms_due_dates_and_actions(intake: Definition) -> None:
    assert (intake.process_id, intake.name) == ("student_intake", "学生信息录入审核")
    assert {t.id: (t.lane, t.form, t.due, t.action) for t in intake.user_tasks.values()} == {
        "resolve_duplicate": ("county_reviewer", "review", "P3D", None),
        "review_intake": ("school_principal", "review", "P3D", None),
        "revise_intake": ("school_registrar", "student", "P5D", "revise_student"),
        "confirm_intake": ("county_reviewer", "review", "P5D", None),
    }
    assert intake.user_tasks["review_intake"].name == "校长审核"
    assert set(intake.forms) == {"review", "student"}


def test_sha256_is_stable_and_covers_only_the_forms_the_process_uses(intake_source: tuple[bytes, dict]) -> None:
    bpmn, forms = intake_source
    first = load_definition(bpmn, forms)
    again = load_definition(bpmn, {**forms, "unused": {"type": "object"}})
    changed = load_definition(bpmn, {**forms, "review": {**forms["review"], "title": "审核"}})

    assert first.sha256 == again.sha256 == content_sha256(bpmn, {k: forms[k] for k in ("review", "student")})
    assert "unused" not in again.forms
    assert changed.sha256 != first.sha256


def test_user_task_in_no_lane_is_refused_naming_it() -> None:
    errors = problems(one_task(user_task("look", name="校长审核"), lanes={"county_reviewer": ["start", "end"]}))

    assert errors == [{"element_id": "look", "message": "用户任务 look（校长审核）不在任何泳道中 / user task is in no lane"}]


def test_user_task_without_a_form_is_refused() -> None:
    errors = problems(one_task(user_task("look", form=None)))

    assert [e["element_id"] for e in errors] == ["look"]
    assert "未指定表单" in errors[0]["message"]


def test_user_task_with_an_unknown_form_is_refused() -> None:
    errors = problems(one_task(user_task("look", form="nonexistent")))

    assert [e["element_id"] for e in errors] == ["look"]
    assert "nonexistent" in errors[0]["message"]


@pytest.mark.parametrize(
    "form",
    [
        {"type": "object", "properties": {"decision": {"type": "strin"}}},
        {"type": "object", "required": "decision"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"type": "array"},
        ["not", "an", "object"],
    ],
)
def test_form_that_is_not_a_2020_12_object_schema_is_refused(form: object) -> None:
    errors = problems(one_task(user_task("look")), {"review": form})

    assert {e["element_id"] for e in errors} == {"look"}


def test_bad_condition_syntax_names_the_flow() -> None:
    body = (
        '<bpmn:exclusiveGateway id="choose" default="f_default"/>'
        + flow("f_go", "choose", "end", "decision ==")
        + flow("f_default", "choose", "end")
    )
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + user_task("look") + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "choose") + body,
        lanes={"county_reviewer": ["start", "look", "choose", "end"]},
    )

    errors = problems(bpmn)

    assert [e["element_id"] for e in errors] == ["f_go"]
    assert "无法编译" in errors[0]["message"]


def test_every_problem_is_listed_at_once() -> None:
    body = (
        user_task("look", form="nonexistent")
        + user_task("other", form=None)
        + '<bpmn:serviceTask id="call"/>'
        + script_body("calc", "x = (")
        + flow("f3", "other", "call")
        + flow("f4", "call", "calc")
    )
    bpmn = one_task("", lanes={"county_reviewer": ["start", "end"]}, extra_body=body)

    assert {e["element_id"] for e in problems(bpmn)} == {"look", "other", "call", "calc"}


def script_body(task_id: str, script: str) -> str:
    return f'<bpmn:scriptTask id="{task_id}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'


@pytest.mark.parametrize(
    ("timer", "element"),
    [("<bpmn:timeDuration>P5D</bpmn:timeDuration>", "late"), ('<bpmn:timeDuration>"5 days"</bpmn:timeDuration>', "late"),
     ('<bpmn:timeDate>"2025-09-10T00:00:00"</bpmn:timeDate>', "late")],
)
def test_bad_timer_expression_is_refused(timer: str, element: str) -> None:
    boundary = (
        f'<bpmn:boundaryEvent id="late" attachedToRef="look" cancelActivity="false">'
        f"<bpmn:timerEventDefinition>{timer}</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        + '<bpmn:endEvent id="late_end"/>' + flow("f_late", "late", "late_end")
    )
    errors = problems(one_task(user_task("look"), extra_body=boundary))

    assert [e["element_id"] for e in errors] == [element]


def test_bad_due_duration_is_refused() -> None:
    due = '<spiffworkflow:property name="due" value="5 days"/>'
    task = user_task("look").replace("</spiffworkflow:properties>", due + "</spiffworkflow:properties>")

    assert [e["element_id"] for e in problems(one_task(task))] == ["look"]


def test_xml_bomb_is_refused_without_being_expanded() -> None:
    started = time.perf_counter()
    errors = problems(BILLION_LAUGHS)

    assert time.perf_counter() - started < 1
    assert "DOCTYPE" in errors[0]["message"]


def test_external_entity_is_refused_and_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-GUARDIAN-PHONE")
    bpmn = f"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="probe" isExecutable="true" name="&xxe;"><bpmn:startEvent id="start"/></bpmn:process>
</bpmn:definitions>""".encode()

    errors = problems(bpmn)

    assert "DOCTYPE" in errors[0]["message"]
    assert "TOP-SECRET" not in repr(errors)


GARBAGE = [
    b"",
    b"   \n",
    b"not xml at all",
    b"\x00\xff\xfe\x00garbage",
    b"<html><body>hello</body></html>",
    b"<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'/>",
    b"<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'><bpmn:process id='p'/></bpmn:definitions>",
    b"<?xml version='1.0'?><unclosed>",
    "<str>not bytes</str>",
    None,
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_gives_definition_error(garbage: object) -> None:
    with pytest.raises(DefinitionError):
        load_definition(garbage, {})  # type: ignore[arg-type]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_validate_answers_garbage_with_a_structured_refusal(garbage: object) -> None:
    result = validate(garbage, roles=ROLES, forms={})  # type: ignore[arg-type]

    assert result["valid"] is False
    assert result["errors"] and all(set(e) == {"element_id", "message"} for e in result["errors"])


def test_non_executable_process_is_refused() -> None:
    errors = problems(one_task(user_task("look")).replace(b'isExecutable="true"', b'isExecutable="false"'))

    assert errors[0]["element_id"] == "probe"


def test_two_executable_processes_are_refused() -> None:
    bpmn = one_task(user_task("look")).replace(
        b"</bpmn:definitions>", b'<bpmn:process id="second" isExecutable="true"><bpmn:startEvent id="s2"/></bpmn:process></bpmn:definitions>'
    )

    assert "second" in problems(bpmn)[0]["message"]


def test_validate_accepts_student_intake(intake_source: tuple[bytes, dict]) -> None:
    bpmn, forms = intake_source

    assert validate(bpmn, roles=ROLES, forms=forms) == {
        "valid": True,
        "processes": [{"id": "student_intake", "name": "学生信息录入审核"}],
        "errors": [],
        "warnings": [],
    }


def test_validate_names_lanes_that_are_not_roles(intake_source: tuple[bytes, dict]) -> None:
    bpmn, forms = intake_source

    result = validate(bpmn, roles={"school_registrar"}, forms=forms)

    assert result["valid"] is False
    assert {e["element_id"] for e in result["errors"]} == {"Lane_school_principal", "Lane_county_reviewer"}


def test_validate_warns_about_gateways_without_default() -> None:
    body = (
        '<bpmn:exclusiveGateway id="choose"/>'
        + flow("f_a", "choose", "end", 'decision == "a"')
        + flow("f_b", "choose", "end", 'decision != "a"')
    )
    bpmn = probe_bpmn(
        '<bpmn:startEvent id="start"/>' + user_task("look") + '<bpmn:endEvent id="end"/>'
        + flow("f1", "start", "look") + flow("f2", "look", "choose") + body,
        lanes={"county_reviewer": ["start", "look", "choose", "end"]},
    )

    result = validate(bpmn, roles=ROLES, forms={"review": REVIEW_FORM})

    assert result["valid"] is True
    assert [w["element_id"] for w in result["warnings"]] == ["choose"]


def test_read_process_dir_pairs_each_bpmn_with_all_forms() -> None:
    entries = read_process_dir(PROCESSES)

    assert [stem for stem, _, _ in entries] == sorted(p.stem for p in PROCESSES.glob("*.bpmn"))
    assert all({"review", "student"} <= set(forms) for _, _, forms in entries)


def test_file_stem_must_equal_the_process_id(tmp_path: Path) -> None:
    (tmp_path / "forms").mkdir()
    shutil.copy(PROCESSES / "forms" / "review.json", tmp_path / "forms" / "review.json")
    (tmp_path / "renamed.bpmn").write_bytes(script_then_review("n = 1"))

    with pytest.raises(DefinitionError) as caught:
        load_process_dir(tmp_path)
    assert caught.value.errors[0]["element_id"] == "probe"

    (tmp_path / "renamed.bpmn").rename(tmp_path / "probe.bpmn")
    (definition,) = load_process_dir(tmp_path)
    check_file_stem("probe", definition)


def test_process_dir_loads_every_shipped_process() -> None:
    assert [d.process_id for d in load_process_dir(PROCESSES)] == sorted(p.stem for p in PROCESSES.glob("*.bpmn"))


def test_student_intake_diagram_draws_every_element(intake_source: tuple[bytes, dict]) -> None:
    root = etree.fromstring(intake_source[0])
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
    process = root.find("bpmn:process", ns)
    assert process is not None
    drawable = {
        el.get("id")
        for el in process.iter()
        if isinstance(el.tag, str)
        and el is not process
        and el.get("id")
        and etree.QName(el).namespace == ns["bpmn"]
        and etree.QName(el).localname not in {"laneSet", "timerEventDefinition"}
    } | {p.get("id") for p in root.iterfind("bpmn:collaboration/bpmn:participant", ns)}
    shapes = {s.get("bpmnElement") for s in root.iterfind(".//bpmndi:BPMNShape", ns)}
    edges = {e.get("bpmnElement") for e in root.iterfind(".//bpmndi:BPMNEdge", ns)}

    assert drawable == shapes | edges
    assert all(len(e.findall("{http://www.omg.org/spec/DD/20100524/DI}waypoint")) >= 2 for e in root.iterfind(".//bpmndi:BPMNEdge", ns))
