"""Checks run on the BPMN XML before Spiff parses it.

Spiff's parser stops at the first problem; a process admin fixing a file wants every problem at once,
each naming its element. So everything that can be checked on the XML is checked here and collected;
Spiff's parse runs afterwards and contributes whatever it still finds.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.util import BPMN_MODEL_NS
from SpiffWorkflow.spiff.parser.process import SPIFF_XSD

from engine.forms import form_problems
from engine.reminders import parse_policy
from engine.scripting import RefusedSource, compile_expression, compile_script
from engine.templates import compile_instructions
from engine.timers import parse_due, parse_duration

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_MODEL_NS, "spiffworkflow": SPIFF_NS}

_KIND = {
    "process": "流程",
    "subProcess": "子流程",
    "transaction": "事务子流程",
    "callActivity": "调用活动",
    "userTask": "用户任务",
    "manualTask": "人工任务",
    "serviceTask": "服务任务",
    "scriptTask": "脚本任务",
    "sendTask": "发送任务",
    "receiveTask": "接收任务",
    "businessRuleTask": "业务规则任务",
    "task": "任务",
    "sequenceFlow": "顺序流",
    "exclusiveGateway": "排他网关",
    "inclusiveGateway": "包容网关",
    "parallelGateway": "并行网关",
    "eventBasedGateway": "事件网关",
    "startEvent": "开始事件",
    "endEvent": "结束事件",
    "boundaryEvent": "边界事件",
    "intermediateCatchEvent": "中间捕获事件",
    "intermediateThrowEvent": "中间抛出事件",
    "lane": "泳道",
}
_HUMAN_TASKS = ("userTask", "manualTask")
_MAX_SCHEMA_ERRORS = 20


@dataclass
class Findings:
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)

    def error(self, element_id: str | None, message: str) -> None:
        entry = {"element_id": element_id, "message": message}
        if entry not in self.errors:
            self.errors.append(entry)

    def warn(self, element_id: str | None, message: str) -> None:
        entry = {"element_id": element_id, "message": message}
        if entry not in self.warnings:
            self.warnings.append(entry)

    def has_error_for(self, element_id: str | None) -> bool:
        return any(e["element_id"] == element_id for e in self.errors)


@dataclass(frozen=True)
class HumanTaskXml:
    id: str
    properties: dict[str, str]
    instructions: str | None


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def label(element: etree._Element) -> str:
    """`用户任务 review_intake（校长审核）`, written to be followed directly by the Chinese message."""
    kind = _KIND.get(local_name(element), local_name(element))
    name = " ".join((element.get("name") or "").split())
    ident = element.get("id") or "?"
    return f"{kind} {ident}（{name}）" if name else f"{kind} {ident} "


def _xpath(element: etree._Element, path: str) -> list[Any]:
    return element.xpath(path, namespaces=NS)


def processes(root: etree._Element) -> list[etree._Element]:
    return _xpath(root, "./bpmn:process")


def is_executable(process: etree._Element) -> bool:
    # Spiff's rule: a process without the attribute counts as executable.
    return process.get("isExecutable", "true") == "true"


def check_document(root: etree._Element, findings: Findings) -> etree._Element | None:
    """The one executable process of the file, or None after recording why there is not exactly one."""
    if root.tag != f"{{{BPMN_MODEL_NS}}}definitions":
        findings.error(None, f"不是 BPMN 2.0 文件（根元素为 {root.tag}） / not a BPMN 2.0 definitions document")
        return None
    _check_schema(root, findings)
    found = processes(root)
    executable = [p for p in found if is_executable(p)]
    for process in found:
        if not is_executable(process):
            findings.warn(process.get("id"), f"{label(process)}不可执行，已忽略 / process is not executable and is ignored")
    if not executable:
        first = found[0].get("id") if found else None
        findings.error(first, '文件中没有可执行流程（isExecutable="true"） / the file has no executable process')
        return None
    if len(executable) > 1:
        ids = "、".join(p.get("id") or "?" for p in executable)
        findings.error(
            executable[1].get("id"),
            f"每个文件只能有一个可执行流程，此文件有 {len(executable)} 个：{ids} / exactly one executable process per file",
        )
        return None
    process = executable[0]
    if not process.get("id"):
        findings.error(None, "可执行流程缺少 id / the executable process has no id")
        return None
    return process


_SCHEMA = threading.local()


def _bpmn_schema() -> etree.XMLSchema:
    # lxml schema objects keep their error log on the object, so each thread gets its own.
    schema = getattr(_SCHEMA, "schema", None)
    if schema is None:
        schema = BpmnValidator(imports={"spiffworkflow": SPIFF_XSD}).validator
        _SCHEMA.schema = schema
    return schema


def _check_schema(root: etree._Element, findings: Findings) -> None:
    schema = _bpmn_schema()
    # Same rewrite Spiff's validator does: bpmn-js writes correlation expressions the XSD rejects.
    for expression in _xpath(root, ".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression"):
        expression.tag = f"{{{BPMN_MODEL_NS}}}messagePath"
    if schema.validate(root):
        return
    for entry in list(schema.error_log)[:_MAX_SCHEMA_ERRORS]:
        findings.error(_element_id_at_line(root, entry.line), f"不符合 BPMN 2.0 XML 架构（第 {entry.line} 行） / schema violation: {entry.message}")


def _element_id_at_line(root: etree._Element, line: int) -> str | None:
    for element in root.iter():
        if element.sourceline == line and isinstance(element.tag, str):
            current: etree._Element | None = element
            while current is not None:
                if current.get("id"):
                    return current.get("id")
                current = current.getparent()
    return None


def lane_names(process: etree._Element) -> dict[str, str | None]:
    """Node id → lane name; a node listed in nested lanes gets the innermost one, as in Spiff."""
    lanes: dict[str, str | None] = {}
    for ref in _xpath(process, ".//bpmn:laneSet//bpmn:flowNodeRef"):
        if ref.text:
            lanes[ref.text.strip()] = ref.getparent().get("name")
    return lanes


def lanes(process: etree._Element) -> list[etree._Element]:
    return _xpath(process, ".//bpmn:laneSet//bpmn:lane")


def _lane_of(element: etree._Element, process: etree._Element, names: Mapping[str, str | None]) -> str | None:
    current: etree._Element | None = element
    while current is not None and current is not process:
        if current.get("id") in names:
            return names[current.get("id")]
        current = current.getparent()
    return None


def check_process(
    process: etree._Element, forms: Mapping[str, Any], findings: Findings
) -> tuple[list[HumanTaskXml], set[str]]:
    """Human tasks as found in the XML and the names of the forms they reference."""
    names = lane_names(process)
    for lane in lanes(process):
        if not (lane.get("name") or "").strip():
            findings.error(lane.get("id"), f"{label(lane)}没有名称（泳道名称即角色代码） / lane has no name (the lane name is the role code)")

    human_tasks: list[HumanTaskXml] = []
    referenced: set[str] = set()
    for element in process.iter():
        kind = local_name(element)
        if kind in _HUMAN_TASKS:
            task = _check_human_task(element, process, names, forms, findings)
            human_tasks.append(task)
            if "form" in task.properties:
                referenced.add(task.properties["form"])
        elif kind == "startEvent" and element.getparent() is process:
            form = _properties(element).get("form")
            if form:
                _check_start_form(element, form, forms, findings)
                referenced.add(form)
        elif kind == "sequenceFlow":
            _check_condition(element, findings)
        elif kind == "scriptTask":
            _check_script_task(element, findings)
        elif kind == "serviceTask":
            _check_service_task(element, findings)
        elif kind in ("exclusiveGateway", "inclusiveGateway"):
            _check_gateway(element, process, findings)
        elif kind == "timerEventDefinition":
            _check_timer(element, findings)
        elif kind == "conditionalEventDefinition":
            for condition in _xpath(element, "./bpmn:condition"):
                _compile(condition.text, element.getparent(), "条件事件", findings, script=False)
        elif kind in ("loopCardinality", "completionCondition", "loopCondition"):
            _compile(element.text, _owner(element), "循环表达式", findings, script=False)
        elif kind == "callActivity":
            findings.error(
                element.get("id"),
                f"{label(element).rstrip()}：暂不支持调用其他流程文件 / call activities are not supported yet (one process per file)",
            )
        if kind in ("preScript", "postScript") and etree.QName(element).namespace == SPIFF_NS:
            _compile(element.text, _owner(element), "前置脚本" if kind == "preScript" else "后置脚本", findings, script=True)
    return human_tasks, referenced


def start_form(process: etree._Element) -> str | None:
    """The form named on the process's own start event (`spiffworkflow:property name="form"`): what a
    person starting it by hand fills in. None without one."""
    for event in _xpath(process, "./bpmn:startEvent"):
        form = _properties(event).get("form")
        if form:
            return form
    return None


def _check_start_form(element: etree._Element, form: str, forms: Mapping[str, Any], findings: Findings) -> None:
    if form not in forms:
        findings.error(element.get("id"), f"{label(element)}引用的表单 {form} 不存在 / form {form!r} not found")
        return
    for problem in form_problems(forms[form]):
        findings.error(element.get("id"), f"{label(element)}的表单 {form}：{problem}")


def _owner(element: etree._Element) -> etree._Element:
    current = element.getparent()
    while current.getparent() is not None and not current.get("id"):
        current = current.getparent()
    return current


def _properties(element: etree._Element) -> dict[str, str]:
    found: dict[str, str] = {}
    for prop in _xpath(element, "./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"):
        if prop.get("name") is not None:
            found[prop.get("name")] = prop.get("value", "")
    return found


def _check_human_task(
    element: etree._Element,
    process: etree._Element,
    names: Mapping[str, str | None],
    forms: Mapping[str, Any],
    findings: Findings,
) -> HumanTaskXml:
    task_id = element.get("id")
    props = _properties(element)
    if not _lane_of(element, process, names):
        english = "user task" if local_name(element) == "userTask" else "manual task"
        findings.error(task_id, f"{label(element)}不在任何泳道中 / {english} is in no lane")

    form = props.get("form")
    if local_name(element) == "userTask" and not form:
        findings.error(
            task_id, f'{label(element)}未指定表单（spiffworkflow:property name="form"） / user task names no form'
        )
    if form:
        if form not in forms:
            findings.error(task_id, f"{label(element)}引用的表单 {form} 不存在 / form {form!r} not found")
        else:
            for problem in form_problems(forms[form]):
                findings.error(task_id, f"{label(element)}的表单 {form}：{problem}")
    if props.get("action") is not None and not form:
        findings.error(task_id, f"{label(element)}指定了 action 却没有表单 / an action needs a form")
    if "due" in props:
        try:
            parse_due(props["due"])
        except ValueError:
            findings.error(
                task_id, f"{label(element)}的期限 {props['due']!r} 既不是 ISO-8601 时长（如 P5D）、工作日（如 P5WD），也不是月日（如 --09-10）"
                         " / due is neither an ISO-8601 duration, working days nor a month-day"
            )
    if "due_from" in props and (not props["due_from"].isidentifier() or "due" not in props):
        findings.error(task_id, f"{label(element)}的期限起点 due_from {props['due_from']!r} 应为数据字段名，且须同时设置 due"
                                " / due_from names a data field and needs a due")
    if "reminders" in props:
        try:
            parse_policy(props["reminders"])
        except ValueError as exc:
            findings.error(task_id, f"{label(element)}的提醒规则 {props['reminders']!r} 无效（如 -P3D,-P1D,P0D,overdue-daily,"
                                    f"escalate-after-3） / {exc}")
    if "org_unit" in props:
        _compile(props["org_unit"], element, "办理单位表达式 org_unit", findings, script=False)

    instructions = None
    for node in _xpath(element, "./bpmn:extensionElements/spiffworkflow:instructionsForEndUser"):
        instructions = node.text
    if instructions:
        try:
            compile_instructions(instructions)
        except TemplateError as exc:
            findings.error(task_id, f"{label(element)}的任务说明模板有误 / instructions do not compile: {exc}")
    return HumanTaskXml(id=task_id, properties=props, instructions=instructions)


def _compile(source: str | None, owner: etree._Element, what: str, findings: Findings, *, script: bool) -> None:
    if source is None or not source.strip():
        findings.error(owner.get("id"), f"{label(owner)}的{what}为空 / empty {'script' if script else 'expression'}")
        return
    try:
        (compile_script if script else compile_expression)(source)
    except RefusedSource as exc:
        findings.error(owner.get("id"), f"{label(owner)}的{what}无法编译 / does not compile under the sandbox: {exc}")


def _check_condition(flow: etree._Element, findings: Findings) -> None:
    for condition in _xpath(flow, "./bpmn:conditionExpression"):
        _compile(condition.text, flow, "条件", findings, script=False)


def _check_script_task(element: etree._Element, findings: Findings) -> None:
    scripts = _xpath(element, "./bpmn:script")
    if not scripts:
        findings.error(element.get("id"), f"{label(element)}没有脚本 / script task has no script")
        return
    _compile(scripts[0].text, element, "脚本", findings, script=True)


def _check_service_task(element: etree._Element, findings: Findings) -> None:
    operators = _xpath(element, "./bpmn:extensionElements/spiffworkflow:serviceTaskOperator")
    if not operators or not (operators[0].get("id") or "").strip():
        findings.error(
            element.get("id"),
            f"{label(element)}未指定服务（spiffworkflow:serviceTaskOperator） / service task names no operator",
        )
        return
    for param in _xpath(operators[0], ".//spiffworkflow:parameter"):
        if param.get("value") is None:
            continue
        _compile(param.get("value"), element, f"参数 {param.get('id')}", findings, script=False)


def _check_gateway(gateway: etree._Element, process: etree._Element, findings: Findings) -> None:
    gateway_id = gateway.get("id")
    outgoing = [f for f in _xpath(process, ".//bpmn:sequenceFlow") if f.get("sourceRef") == gateway_id]
    if len(outgoing) < 2:
        return
    default = gateway.get("default")
    for flow in outgoing:
        if flow.get("id") != default and not _xpath(flow, "./bpmn:conditionExpression"):
            findings.error(flow.get("id"), f"{label(flow)}既非默认流也没有条件 / flow out of {gateway_id} has no condition and is not the default")
    if default is None:
        findings.warn(gateway_id, f"{label(gateway)}没有默认流，条件须覆盖所有情况 / gateway has no default flow")


def _check_timer(definition: etree._Element, findings: Findings) -> None:
    event = definition.getparent()
    for kind in ("timeDate", "timeDuration", "timeCycle"):
        for node in _xpath(definition, f"./bpmn:{kind}"):
            before = len(findings.errors)
            _compile(node.text, event, "定时器表达式", findings, script=False)
            if len(findings.errors) == before:
                _check_timer_constant(node.text, kind, event, findings)


_HINTS = {"timeDuration": '"P5D"', "timeDate": '"2025-09-10T00:00:00+08:00"', "timeCycle": '"R3/P1D"'}
# `P5D` unquoted compiles (as a variable name) and only fails when the timer starts, days later.
_UNQUOTED_ISO = re.compile(r"^(P[0-9T]|R[0-9]*/)", re.IGNORECASE)


def _check_timer_constant(source: str, kind: str, event: etree._Element, findings: Findings) -> None:
    text = source.strip()
    if _UNQUOTED_ISO.match(text):
        findings.error(
            event.get("id"),
            f"{label(event)}的定时器表达式是 Python，ISO 值须加引号，如 {_HINTS[kind]} / timer expressions are Python: quote {text}",
        )
        return
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return  # computed from data at run time
    try:
        if not isinstance(value, str):
            raise ValueError(type(value).__name__)
        if kind == "timeDuration":
            parse_duration(value)
        elif kind == "timeDate":
            if datetime.fromisoformat(value).tzinfo is None:
                raise ValueError("no UTC offset")
        elif not value.upper().startswith("R"):
            raise ValueError("not a repeating interval")
    except ValueError:
        findings.error(
            event.get("id"), f"{label(event)}的定时器值 {text} 无效，应为如 {_HINTS[kind]} 的 Python 字符串 / invalid timer value"
        )


def check_roles(process: etree._Element, roles: Collection[str], findings: Findings) -> None:
    for lane in lanes(process):
        name = (lane.get("name") or "").strip()
        if name and name not in roles:
            findings.error(lane.get("id"), f"{label(lane)}的名称不是已知角色代码 / lane name {name!r} is not a role")
