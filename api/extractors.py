"""Babel extraction methods (babel.cfg) for the Chinese texts that reach pages from outside the templates.

- `registry/**.py`: every `msg("…")` (registry/errors.py) and the values of module-level label dictionaries
  (`STATUS_LABELS = {…: "已毕业"}`, names ending in _LABELS, _WORDS or _NAMES), which messages and pages show.
- `processes/*.bpmn`: the names of processes, tasks, events, gateways and flows, and each user task's instructions
  (a Jinja template: its English keeps the same `{{ … }}`).
- `processes/forms/*.json`: the `title` and `description` of a form, its fields and their choices.
- `registry/codes/*.csv`: the labels of the code tables, except `area` (place names stay as they are).

Pages translate these at render time (`tr` filter, `code_label`, api/html_forms.py); a text the catalog lacks —
a process version deployed later with new wording — is shown in Chinese.
"""

import ast
import csv
import io
import json
import re
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any
from xml.etree import ElementTree

from babel.messages.extract import extract_python

HAN = re.compile(r"[\u3400-\u9fff]")
Extracted = Iterator[tuple[int, str | None, Any, list[str]]]
_LABEL_DICT = re.compile(r"_?[A-Z][A-Z0-9_]*_(LABELS|WORDS|NAMES)")
_INSTRUCTIONS = "{http://spiffworkflow.org/bpmn/schema/1.0/core}instructionsForEndUser"
_FORM_TEXTS = ("title", "description")


def extract_registry(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                     options: Mapping[str, Any]) -> Extracted:
    source = fileobj.read()
    for lineno, funcname, messages, comments in extract_python(io.BytesIO(source), [*keywords, "msg"], comment_tags,
                                                              options):
        if funcname != "msg":
            yield lineno, funcname, messages, comments
        elif isinstance(first := messages[0] if isinstance(messages, tuple) else messages, str):
            yield lineno, None, first, comments  # the template; its parameters are no messages
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target if isinstance(
            node, ast.AnnAssign) else None
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and _LABEL_DICT.fullmatch(target.id) and isinstance(value, ast.Dict):
            for text in value.values:
                if isinstance(text, ast.Constant) and isinstance(text.value, str) and HAN.search(text.value):
                    yield text.lineno, None, text.value, []


def extract_bpmn(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                 options: Mapping[str, Any]) -> Extracted:
    root = ElementTree.parse(fileobj).getroot()  # our own files, not uploads: no hostile XML here
    for name in _names(root):
        yield 0, None, name, []
    for element in root.iter(_INSTRUCTIONS):
        if element.text and HAN.search(element.text):
            yield 0, None, element.text, ["Jinja template: keep every {{ … }} and {% … %} as it is"]


def _names(root: ElementTree.Element) -> Iterator[str]:
    for element in root.iter():
        name = element.get("name")
        if name and HAN.search(name):
            yield name


def bpmn_names(bpmn: str | bytes) -> list[str]:
    """The Chinese names in a deployed process's XML (checked at deployment, engine/safe_xml.py)."""
    return list(dict.fromkeys(_names(ElementTree.fromstring(bpmn))))


def form_texts(node: Any) -> Iterator[str]:
    """The Chinese titles and descriptions of a JSON Schema form, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _FORM_TEXTS and isinstance(value, str) and HAN.search(value):
                yield value
            else:
                yield from form_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from form_texts(item)


def extract_form(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                 options: Mapping[str, Any]) -> Extracted:
    for text in form_texts(json.load(fileobj)):
        yield 0, None, text, []


def extract_code_table(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                       options: Mapping[str, Any]) -> Extracted:
    if getattr(fileobj, "name", "").endswith("area.csv"):
        return
    for line, row in enumerate(csv.DictReader(io.StringIO(fileobj.read().decode("utf-8-sig"))), start=2):
        if row.get("code") and HAN.search(row.get("label") or ""):
            yield line, None, row["label"].strip(), []
