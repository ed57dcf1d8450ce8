"""What a rule says about one field: an error blocks the submission, a warning is shown and kept."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from registry.errors import Message, msg

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    field: str
    code: str
    # Chinese, starting with the field's Chinese label: "身份证件号：校验位错误：应为 X，实为 5".
    message: str
    severity: Severity


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def warnings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "warning"]


def error(field: str, label: str, code: str, detail: str) -> Finding:
    return Finding(field, code, labelled(label, detail), "error")


def warning(field: str, label: str, code: str, detail: str) -> Finding:
    return Finding(field, code, labelled(label, detail), "warning")


def labelled(label: str, detail: str) -> Message:
    """"身份证件号：校验位错误…": the field's label (a catalogued text, registry/errors.py) and what is wrong with it."""
    return msg("{label}：{detail}", label=msg(label), detail=detail)
