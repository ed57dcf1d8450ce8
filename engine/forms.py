"""Form schemas (JSON Schema 2020-12) and the check a task's submitted data must pass.

A user task names its form in `spiffworkflow:property name="form"`. What the task accepts depends on
whether it also names an `action`:

- no action (review tasks): the payload *is* the form object, e.g. `{"decision": "return",
  "comment": "..."}`, and it goes into the workflow data;
- with an action (e.g. `revise_intake`, action `revise_student`): the payload is `{<form name>:
  <form object>}`, e.g. `{"student": {...}}`. The caller hands that object to the registry action;
  it never enters the workflow data, which keeps only ids and decisions (DESIGN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from engine.errors import EngineError, FormDataError
from engine.task_data import plain_json

if TYPE_CHECKING:
    from engine.definitions import Definition

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Submission:
    workflow_data: dict
    action: str | None
    action_input: dict | None


def form_problems(schema: Any) -> list[str]:
    if not isinstance(schema, dict):
        return ["表单必须是 JSON 对象 / a form must be a JSON object"]
    problems: list[str] = []
    declared = schema.get("$schema")
    if declared is not None and str(declared).rstrip("#") != DRAFT_2020_12:
        problems.append(f"表单须使用 JSON Schema 2020-12，而不是 {declared} / forms must use JSON Schema 2020-12")
    if schema.get("type") != "object":
        problems.append('表单顶层须为 "type": "object" / a form must describe an object')
    for error in sorted(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema), key=str):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"表单不是有效的 JSON Schema：{where} / invalid JSON Schema: {error.message}")
    return problems


def payload_schema(form_name: str, form: dict, action: str | None) -> dict:
    if action is None:
        return form
    inner = {key: value for key, value in form.items() if key != "$schema"}
    return {
        "$schema": DRAFT_2020_12,
        "type": "object",
        "properties": {form_name: inner},
        "required": [form_name],
        "additionalProperties": False,
    }


def check_submission(
    *, task_id: str, form_name: str | None, action: str | None, forms: Mapping[str, dict], payload: Any
) -> Submission:
    data = plain_json(payload, where="data", element_id=task_id)
    if not isinstance(data, dict):
        raise FormDataError("任务数据必须是 JSON 对象 / task data must be an object", element_id=task_id, errors=[])
    if form_name is None:
        return Submission(workflow_data=data, action=action, action_input=None)
    schema = payload_schema(form_name, forms[form_name], action)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [
        {"path": "/" + "/".join(str(p) for p in error.absolute_path), "message": error.message}
        for error in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    ]
    if errors:
        raise FormDataError(
            f"提交的数据不符合表单 {form_name} / data does not match form {form_name!r}", element_id=task_id, errors=errors
        )
    if action is None:
        return Submission(workflow_data=data, action=None, action_input=None)
    action_input = data.pop(form_name)
    return Submission(workflow_data=data, action=action, action_input=action_input)


def task_form(definition: Definition, task_id: str) -> dict | None:
    """The JSON Schema of what `task_id` accepts (what `GET /api/tasks/{id}` shows as `form`)."""
    task = definition.user_tasks.get(task_id)
    if task is None:
        raise EngineError(f"流程中没有用户任务 {task_id} / no such user task", element_id=task_id)
    if task.form is None:
        return None
    return payload_schema(task.form, definition.forms[task.form], task.action)


def submission(definition: Definition, task_id: str, payload: Any) -> Submission:
    """Checks a payload before anything is written: the caller runs `action` with `action_input`,
    then passes the same payload to `runtime.complete_task`, which keeps only `workflow_data`."""
    task = definition.user_tasks.get(task_id)
    if task is None:
        raise EngineError(f"流程中没有用户任务 {task_id} / no such user task", element_id=task_id)
    return check_submission(task_id=task_id, form_name=task.form, action=task.action, forms=definition.forms, payload=payload)
