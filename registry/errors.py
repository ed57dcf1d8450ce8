"""One error family for everything a user can cause; the web layer maps each to an HTTP status.

Messages are Chinese and translatable. Write a message as `msg(template, **params)`: the template is a
literal Chinese text with `{name}` placeholders (str.format syntax, `{amount:.2f}` and `{code!r}` included), and
the parameters are the values to put in it:

    raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    details=[{"field": "grade", "message": msg("年级须为 1–9")}]

A `Message` is a `str`, the Chinese text formatted: `str(err)`, `err.message`, comparisons, f-strings, logs, audit
rows and JSON all see exactly the Chinese. The web layer shows it in the request's language with `translate`
(api/i18n.py: the error handlers, and every `{{ … }}` of a page through the Jinja environment's finalize), which
looks the *template* up in the catalog, formats the English template with the same parameters, and falls back
to the Chinese for a template the catalog does not have (a process deployed later with new text).

- Parameters stay as they are (names, codes, numbers: data), except a parameter that is itself a `Message`,
  which is translated too: `msg("{field}：{problem}", field=msg("出生日期"), problem=…)`.
- `join_messages(parts, "；")` joins messages so that each part and the separator are translated; `+`, f-strings
  and `"；".join(…)` give a plain Chinese `str`, which is shown as it is.
- The template must be a literal (Babel finds it by the keyword `msg`, babel.cfg); never `msg(f"…")`.

To add messages to the catalog (commands also in babel.cfg):
    .venv/bin/pybabel extract -F babel.cfg --no-location --sort-output -o api/translations/messages.pot .
    .venv/bin/pybabel update -i api/translations/messages.pot -d api/translations -l en --no-fuzzy-matching
then write the English of each new entry in api/translations/en/LC_MESSAGES/messages.po, keeping the `{name}`
placeholders; tests/api/test_i18n.py fails on an untranslated message or a placeholder the English lacks.
"""

import re
from collections.abc import Callable, Iterable
from typing import Any, Self

_HAN = re.compile(r"[\u3400-\u9fff]")


class Message(str):
    """A Chinese text that remembers its template and parameters, so that it can be shown in another language."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, /, **params: Any) -> Self:
        self = super().__new__(cls, template.format(**params) if params else template)
        self.template = template
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a Celery result, a copied exception) as what it is, not as a bare str.
        return (_rebuild, (self.template, self.params))

    def translate(self, gettext: Callable[[str], str]) -> str:
        """This message in the language `gettext` speaks; the Chinese when the template has no usable translation."""
        template = gettext(self.template)
        if template == self.template and _HAN.search(template):
            return str(self)  # no English for this text: all of it in Chinese rather than half of it
        params = {k: translate(v, gettext) for k, v in self.params.items()}
        try:
            return template.format(**params) if params else template
        except (KeyError, IndexError, ValueError):  # a translation whose placeholders do not match: show the Chinese
            return str(self)


def _rebuild(template: str, params: dict[str, Any]) -> Message:
    return Message(template, **params)


msg = Message


def translate(value: Any, gettext: Callable[[str], str]) -> Any:
    """A `Message` in gettext's language; anything else as it is."""
    return value.translate(gettext) if isinstance(value, Message) else value


def join_messages(parts: Iterable[str], separator: str = "；") -> Message:
    """`separator.join(parts)` whose parts (and the separator: "；" is "; " in English) are translated one by one."""
    parts = list(parts)
    names = [f"part{i}" for i in range(len(parts))]
    # This template is in no catalog, so it stays as it is; its parts and the separator are translated.
    template = "{separator}".join("{" + name + "}" for name in names)
    return Message(template, separator=Message(separator), **dict(zip(names, parts, strict=True)))


def translate_details(details: Any, gettext: Callable[[str], str]) -> Any:
    """`details` with the `message` of each [{field, message}] translated."""
    if isinstance(details, list):
        return [{**d, "message": translate(d["message"], gettext)} if isinstance(d, dict) and "message" in d else d
                for d in details]
    return details


class DomainError(Exception):
    status = 400
    code = "domain_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    status = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class RuleViolation(DomainError):
    """Input breaks a rule; `details` lists the offending fields as [{field, message}]."""

    status = 422
    code = "rule_violation"
