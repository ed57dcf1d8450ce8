"""Server-side HTML forms from a task's JSON Schema: the fields to render, and posted values back to JSON."""

from dataclasses import dataclass, field
from typing import Any

from api.i18n import gettext
from registry.code_tables import load_code_tables
from registry.forms import choices


@dataclass
class Field:
    name: str  # dotted path, e.g. "student.name"
    title: str
    widget: str  # text, textarea, number, date, month, select, radio, checkbox, file
    required: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    value: Any = None
    error: str | None = None
    hint: str | None = None


def _options(name: str, node: dict[str, Any]) -> list[tuple[str, str]]:
    tables = load_code_tables()
    leaf = name.rsplit(".", 1)[-1]
    if leaf in tables.names():
        return [(i.code, f"{i.code} {gettext(i.label)}") for i in tables.table(leaf)]
    return [(value, gettext(text)) for value, text in choices(node)]


def fields_of(schema: dict[str, Any], prefix: str = "") -> list[Field]:
    out: list[Field] = []
    required = set(schema.get("required", []))
    for key, node in (schema.get("properties") or {}).items():
        name = f"{prefix}{key}"
        if node.get("type") == "object":
            out.extend(fields_of(node, prefix=f"{name}."))
            continue
        kind = node.get("type")
        leaf_table = key in load_code_tables().names()
        if node.get("format") == ATTACHMENTS:
            widget = "file"
        elif key == "decision":
            widget = "radio"
        elif kind == "boolean":
            widget = "checkbox"
        elif "enum" in node or "oneOf" in node or leaf_table:
            widget = "select"
        elif kind in ("integer", "number"):
            widget = "number"
        elif node.get("format") == "date":
            widget = "date"
        elif key.endswith("_month"):  # enrolled_month, effective_month, change_month: YYYY-MM
            widget = "month"
        elif key == "comment" or (node.get("maxLength") or 0) > 200:
            widget = "textarea"
        else:
            widget = "text"
        opts = _options(name, node) if widget in ("select", "radio") else []
        # Titles, hints and choices in the page's language: the form files are extracted (api/extractors.py), and a
        # form deployed later with new text shows it in Chinese.
        hint = node.get("description")
        out.append(Field(name=name, title=gettext(node["title"]) if "title" in node else key, widget=widget,
                         required=key in required, options=opts, hint=gettext(hint) if hint else None))
    return out


# A form field of scans (`{"type": "array", "items": {"type": "integer"}, "format": "attachments"}`): the page
# uploads the files as the task's attachments and puts their ids in the field; the API client uploads
# them first (POST /api/tasks/{id}/attachments) and sends the ids.
ATTACHMENTS = "attachments"


def file_fields(schema: dict[str, Any], prefix: str = "") -> list[str]:
    return [f.name for f in fields_of(schema, prefix) if f.widget == "file"]


def attachment_ids(raw: str) -> list[int]:
    """The ids a re-rendered form carries in its hidden input ("12,15"); anything else is dropped."""
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


def set_path(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[leaf] = value


def _convert(node: dict[str, Any], raw: str) -> Any:
    kind = node.get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw  # the schema check names the field and says a number is wanted
    return raw


def parse_posted(schema: dict[str, Any], posted: dict[str, str], prefix: str = "") -> dict[str, Any]:
    """Only the schema's own fields are read; empty inputs are left out so `required` can speak."""
    out: dict[str, Any] = {}
    for key, node in (schema.get("properties") or {}).items():
        name = f"{prefix}{key}"
        if node.get("type") == "object":
            out[key] = parse_posted(node, posted, prefix=f"{name}.")
        elif node.get("type") == "boolean":
            out[key] = posted.get(name) in ("on", "true", "1")
        elif node.get("format") == ATTACHMENTS:
            # The scans uploaded with an earlier, refused post ride along in a hidden "<name>:kept".
            if ids := attachment_ids(",".join(v for v in (posted.get(name), posted.get(f"{name}:kept")) if v)):
                out[key] = ids
        else:
            raw = (posted.get(name) or "").strip()
            if raw:
                out[key] = _convert(node, raw)
    return out


def posted_changes(schema: dict[str, Any], posted: dict[str, str]) -> dict[str, Any]:
    """An edit form of flat fields: what it sent, as typed (the service normalises and checks).

    Unlike `parse_posted`, a blank input is None (clearing a field is a change) and a field the post
    lacks is left out (not a request to clear it); an unchecked checkbox sends nothing, so a boolean
    is False unless sent."""
    out: dict[str, Any] = {}
    for key, node in (schema.get("properties") or {}).items():
        if node.get("type") == "boolean":
            out[key] = posted.get(key) in ("on", "true", "1")
        elif key in posted:
            out[key] = posted[key].strip() or None
    return out


def fill(fields: list[Field], values: dict[str, Any], errors: dict[str, str]) -> list[Field]:
    def lookup(path: str) -> Any:
        node: Any = values
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    for f in fields:
        f.value = lookup(f.name)
        f.error = errors.get(f.name)
    return fields
