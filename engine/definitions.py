from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs import BpmnProcessSpec

from engine.definition_checks import (
    Findings,
    HumanTaskXml,
    check_document,
    check_process,
    check_roles,
    processes,
    start_form,
)
from engine.errors import DefinitionError
from engine.parser import MealrollBpmnParser
from engine.safe_xml import XmlRefused, parse_bpmn_xml
from engine.serializer import spec_to_json


@dataclass(frozen=True)
class UserTaskInfo:
    id: str
    name: str
    lane: str | None
    form: str | None
    due: str | None
    action: str | None
    instructions: str | None = None
    # An expression on the task's data naming the org unit (its code) that acts, e.g. the receiving
    # school of a transfer; without it the task belongs to the instance's own org unit.
    org_unit: str | None = None
    # The reminder policy (engine/reminders.py); None: the default policy when the task has a `due`.
    reminders: str | None = None
    # The task data field holding the date `due` counts from (an ISO date or datetime), instead of the
    # moment the task opens: the autumn cycle's --09-10 belongs to its school year even when a school's
    # cycle starts late.
    due_from: str | None = None


# eq=False: a Definition is compared and hashed by identity; callers key their caches by sha256.
@dataclass(frozen=True, eq=False)
class Definition:
    process_id: str
    name: str
    sha256: str
    bpmn: bytes = field(repr=False)
    forms: dict[str, dict] = field(repr=False)
    user_tasks: dict[str, UserTaskInfo] = field(repr=False)
    spec: BpmnProcessSpec = field(repr=False)
    subprocess_specs: dict[str, BpmnProcessSpec] = field(repr=False)
    # The form of the start event, for a process started by hand without a registered starter.
    start_form: str | None = None

    def spec_json(self) -> str:
        return spec_to_json(self.spec, self.subprocess_specs)


def content_sha256(bpmn: bytes, forms: Mapping[str, dict]) -> str:
    digest = hashlib.sha256()
    digest.update(b"bpmn\0")
    digest.update(bpmn)
    for name in sorted(forms):
        canonical = json.dumps(forms[name], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(f"\0form\0{name}\0".encode())
        digest.update(canonical.encode())
    return digest.hexdigest()


@dataclass
class _Outcome:
    findings: Findings
    processes: list[dict]
    definition: Definition | None
    process_element: etree._Element | None


def _examine(bpmn: bytes, forms: Mapping[str, dict]) -> _Outcome:
    findings = Findings()
    try:
        root = parse_bpmn_xml(bpmn)
    except XmlRefused as exc:
        findings.error(None, str(exc))
        return _Outcome(findings, [], None, None)

    summaries = [{"id": p.get("id"), "name": p.get("name") or p.get("id")} for p in processes(root)]
    process = check_document(root, findings)
    if process is None:
        return _Outcome(findings, summaries, None, None)
    human_tasks, referenced = check_process(process, forms, findings)

    process_id = process.get("id")
    parser = MealrollBpmnParser()
    try:
        parser.add_bpmn_xml(root)
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        element_id = exc.id or None
        if not findings.has_error_for(element_id):
            findings.error(element_id, f"流程解析失败 / Spiff cannot parse it: {exc.args[0] if exc.args else exc}")
        return _Outcome(findings, summaries, None, process)
    except Exception as exc:
        findings.error(None, f"流程解析失败 / Spiff cannot parse it: {type(exc).__name__}: {exc}")
        return _Outcome(findings, summaries, None, process)
    if findings.errors:
        return _Outcome(findings, summaries, None, process)

    kept_forms = {name: forms[name] for name in sorted(referenced)}
    definition = Definition(
        process_id=process_id,
        name=process.get("name") or process_id,
        sha256=content_sha256(bytes(bpmn), kept_forms),
        bpmn=bytes(bpmn),
        forms=kept_forms,
        user_tasks=_user_tasks(spec, subprocess_specs, human_tasks),
        spec=spec,
        subprocess_specs=subprocess_specs,
        start_form=start_form(process),
    )
    return _Outcome(findings, summaries, definition, process)


def _user_tasks(
    spec: BpmnProcessSpec, subprocess_specs: Mapping[str, BpmnProcessSpec], human_tasks: list[HumanTaskXml]
) -> dict[str, UserTaskInfo]:
    xml_by_id = {task.id: task for task in human_tasks}
    found: dict[str, UserTaskInfo] = {}
    for process_spec in (spec, *subprocess_specs.values()):
        for task_spec in process_spec.task_specs.values():
            bpmn_id = getattr(task_spec, "bpmn_id", None)
            if not task_spec.manual or bpmn_id is None:
                continue
            xml = xml_by_id.get(bpmn_id)
            props = xml.properties if xml else task_spec.extensions.get("properties", {})
            found[bpmn_id] = UserTaskInfo(
                id=bpmn_id,
                name=task_spec.bpmn_name or bpmn_id,
                lane=task_spec.lane,
                form=props.get("form") or None,
                due=props.get("due") or None,
                action=props.get("action") or None,
                instructions=xml.instructions if xml else task_spec.extensions.get("instructionsForEndUser"),
                org_unit=props.get("org_unit") or None,
                reminders=props.get("reminders") or None,
                due_from=props.get("due_from") or None,
            )
    return found


def load_definition(bpmn: bytes, forms: Mapping[str, dict]) -> Definition:
    try:
        outcome = _examine(bpmn, forms)
    except Exception as exc:  # whatever an upload holds, the caller gets a DefinitionError
        raise DefinitionError([_internal_error(exc)]) from exc
    if outcome.definition is None:
        raise DefinitionError(outcome.findings.errors or [{"element_id": None, "message": "流程定义无效 / invalid definition"}])
    return outcome.definition


def validate(bpmn: bytes, *, roles: Collection[str], forms: Mapping[str, dict]) -> dict[str, Any]:
    try:
        outcome = _examine(bpmn, forms)
        if outcome.process_element is not None:
            check_roles(outcome.process_element, roles, outcome.findings)
        errors, warnings, found = outcome.findings.errors, outcome.findings.warnings, outcome.processes
    except Exception as exc:  # the contract is a structured answer for any upload, whatever it holds
        errors, warnings, found = [_internal_error(exc)], [], []
    return {"valid": not errors, "processes": found, "errors": errors, "warnings": warnings}


def _internal_error(exc: Exception) -> dict:
    return {"element_id": None, "message": f"校验时发生内部错误 / internal error while checking: {type(exc).__name__}: {exc}"}


def read_process_dir(path: Path) -> list[tuple[str, bytes, dict[str, dict]]]:
    forms: dict[str, dict] = {}
    for form_path in sorted((path / "forms").glob("*.json")):
        try:
            forms[form_path.stem] = json.loads(form_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DefinitionError(
                [{"element_id": None, "message": f"表单文件 {form_path.name} 不是有效的 JSON / form file is not valid JSON: {exc}"}]
            ) from exc
    return [(bpmn_path.stem, bpmn_path.read_bytes(), dict(forms)) for bpmn_path in sorted(path.glob("*.bpmn"))]


def check_file_stem(stem: str, definition: Definition) -> None:
    if stem != definition.process_id:
        raise DefinitionError(
            [
                {
                    "element_id": definition.process_id,
                    "message": f"文件名 {stem}.bpmn 与流程 id {definition.process_id} 不一致 / the file stem must equal the process id",
                }
            ]
        )


def load_process_dir(path: Path) -> list[Definition]:
    """Every process of a folder, parsed and checked; a stem that differs from its process id is refused."""
    definitions = []
    for stem, bpmn, forms in read_process_dir(path):
        definition = load_definition(bpmn, forms)
        check_file_stem(stem, definition)
        definitions.append(definition)
    return definitions
