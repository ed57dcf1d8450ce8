"""Form data checked against the task's JSON Schema before it may enter a workflow."""

from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from registry.errors import RuleViolation, join_messages, msg

_TYPE_LABELS = {"string": "文本", "integer": "整数", "number": "数字", "boolean": "是/否", "object": "对象", "array": "列表"}


def choices(node: dict[str, Any]) -> list[tuple[str, str]]:
    """A field's allowed values with labels: `oneOf` of const/title, or `enum` with `x-labels`."""
    if "oneOf" in node and all("const" in o for o in node["oneOf"]):
        return [(str(o["const"]), str(o.get("title", o["const"]))) for o in node["oneOf"]]
    labels = node.get("x-labels") or {}
    return [(str(v), str(labels.get(str(v), v))) for v in node.get("enum", [])]


def _field(error: ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path.append(missing)
    elif error.validator == "additionalProperties":
        extra = error.message.split("'")[1] if "'" in error.message else ""
        path.append(extra)
    return ".".join(p for p in path if p) or "data"


def _title(schema: dict[str, Any], field: str) -> str:
    node: Any = schema
    for part in field.split("."):
        node = (node.get("properties") or {}).get(part, {}) if isinstance(node, dict) else {}
    return node.get("title", field) if isinstance(node, dict) else field


def _message(error: ValidationError) -> str:
    v = error.validator
    if v == "required":
        return "必填"
    if v == "additionalProperties":
        return "未知字段，不能提交"
    if v == "type":
        wanted = error.validator_value if isinstance(error.validator_value, str) else error.validator_value[0]
        return f"类型错误，应为{_TYPE_LABELS.get(wanted, wanted)}"
    if v in ("enum", "const", "oneOf", "anyOf"):
        return "取值不在允许范围内"
    if v in ("pattern", "format"):
        return "格式不正确"
    if v in ("minimum", "exclusiveMinimum"):
        return f"不能小于 {error.validator_value}"
    if v in ("maximum", "exclusiveMaximum"):
        return f"不能大于 {error.validator_value}"
    if v == "minLength":
        return "不能为空" if error.validator_value == 1 else f"至少 {error.validator_value} 个字符"
    if v == "maxLength":
        return f"最多 {error.validator_value} 个字符"
    return "取值无效"


# Building a validator costs more than using it; forms live as long as their cached process version.
# Keyed by the schema object (kept alive by the entry); bounded, since a caller may pass fresh dicts.
_CACHE_LIMIT = 512
_validators: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}
_wrappers: dict[tuple[int, str], tuple[dict[str, Any], dict[str, Any]]] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    cached = _validators.get(id(schema))
    if cached is None or cached[0] is not schema:
        if len(_validators) >= _CACHE_LIMIT:
            _validators.clear()
        cached = (schema, Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER))
        _validators[id(schema)] = cached
    return cached[1]


def wrapped(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`{name: <schema>}` as a schema of its own, built once per form (start data wraps the student form)."""
    cached = _wrappers.get((id(schema), name))
    if cached is None or cached[0] is not schema:
        if len(_wrappers) >= _CACHE_LIMIT:
            _wrappers.clear()
        cached = (schema, {"type": "object", "properties": {name: schema}, "required": [name],
                           "additionalProperties": False})
        _wrappers[(id(schema), name)] = cached
    return cached[1]


def check_form(schema: dict[str, Any], data: Any) -> list[dict[str, str]]:
    validator = _validator(schema)
    problems: dict[str, str] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        field = _field(error)
        problems.setdefault(field, f"{_title(schema, field)}：{_message(error)}")
    return [{"field": f, "message": m} for f, m in problems.items()]


def validate_form(schema: dict[str, Any], data: Any) -> None:
    problems = check_form(schema, data)
    if problems:
        raise RuleViolation(msg("表单有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
