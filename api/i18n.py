"""The language of a page: zh-CN unless the user picked English (the `lang` cookie) or the browser asks for it.

Chinese is the source language: the msgids are the Chinese texts, and English comes from
api/translations/en/LC_MESSAGES/messages.po, read with Babel at first use, so no compiled .mo is kept.

Where the Chinese comes from, and how it is shown in English:
- templates: `{{ _("…") }}` / `{% trans %}`; code labels through the `label` filter (api/templating.py).
- registry messages (errors, field errors, warnings): `msg("找不到学生 {student_id}", student_id=…)`, a `str` that is
  the Chinese text (registry/errors.py has the rules). Every `{{ … }}` of a page prints one in the page's language
  (the environment's finalize is `translated`); the error handlers translate `message` and `details[*].message` of
  the JSON. Code that builds a context by hand can call `translated(value)`.
- processes and forms (task titles, step names, form titles, choices, user-task instructions): extracted from
  processes/ (api/extractors.py); pages translate them with the `tr` filter (`{{ task.title | tr }}`), form fields
  in api/html_forms.py, instructions as `registry.instructions.Instructions`, a diagram's names with
  `diagram_names`. A text the catalog lacks (a version deployed later with new wording) stays Chinese.
- code tables: `code_label(table, code)` in templates, the selects of api/html_forms.py.
- scripts (api/static/*.js): their words come with the page as data-* attributes or a JSON block, never in the JS.

To add texts: write the Chinese as above, then run the two commands at the top of babel.cfg and write the English
of each new (empty) entry of messages.po. tests/api/test_i18n.py lists every text without English and every
translation whose {placeholders} differ from its msgid's.
"""

from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar, Token
from functools import cache
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.errors import translate, translate_details

DEFAULT = "zh-CN"
SUPPORTED = ("zh-CN", "en")
COOKIE = "lang"
TRANSLATIONS = Path(__file__).parent / "translations"

# One value per request task: the Jinja environment is shared between threads, so the gettext callables
# installed on it once read the language from here instead of being reinstalled per request.
_locale: ContextVar[str] = ContextVar("mealroll_locale", default=DEFAULT)


def current_locale() -> str:
    return _locale.get()


def set_locale(locale: str) -> Token[str]:
    """Sets the language of the current context; returns the token that `reset_locale` takes."""
    return _locale.set(locale if locale in SUPPORTED else DEFAULT)


def reset_locale(token: Token[str]) -> None:
    _locale.reset(token)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The cookie wins; else the first language of Accept-Language (by q) that we have; else zh-CN."""
    if cookie in SUPPORTED:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, i, tag.strip().lower()))
    for _q, _i, tag in sorted(ranked):
        if tag == "zh" or tag.startswith("zh-"):
            return "zh-CN"
        if tag == "en" or tag.startswith("en-"):
            return "en"
    return DEFAULT


@cache
def load_catalog(locale: str) -> Catalog:
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale=locale)


def _translation(message: str, context: str | None = None) -> str | tuple[str, ...] | None:
    """The catalog's text for a msgid in the current language, or None to show the Chinese as it is."""
    locale = _locale.get()
    if locale == DEFAULT:
        return None
    entry = load_catalog(locale).get(message, context=context)
    if entry is None or entry.fuzzy or not entry.string or not all(entry.string):
        return None
    return entry.string if isinstance(entry.string, str) else tuple(entry.string)


def gettext(message: str) -> str:
    text = _translation(message)
    return text if isinstance(text, str) else message


def pgettext(context: str, message: str) -> str:
    """For one Chinese word English says two ways: 学校 is "School" in a form, "Schools" as the list's name."""
    text = _translation(message, context)
    return text if isinstance(text, str) else message


def ngettext(singular: str, plural: str, n: int) -> str:
    forms = _translation(singular)
    if isinstance(forms, tuple) and len(forms) == 2:
        return forms[0] if n == 1 else forms[1]
    return singular if n == 1 else plural


def translated(value: Any) -> Any:
    """A registry message (registry/errors.py `msg`) in the current language; any other value as it is."""
    return translate(value, gettext)


def translated_details(details: Any) -> Any:
    """[{field, message}] with each message in the current language."""
    return translate_details(details, gettext)


class LocaleMiddleware:
    """Sets the request's language before anything below it runs, exception handlers included, and resets it after:
    the endpoint's worker thread and the tasks it starts run in copies of this context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"cookie", b"accept-language")}
        token = set_locale(negotiate(_cookie(headers.get("cookie", ""), COOKIE), headers.get("accept-language")))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_locale(token)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def extract_labels(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                   options: Mapping[str, Any]) -> Iterator[tuple[int, str | None, Any, list[str]]]:
    """Babel extraction method for api/templating.py (babel.cfg): its code labels reach pages through the `label`
    filter, so their Chinese texts are msgids too although no `_()` surrounds them."""
    from babel.messages.extract import extract_python

    from api.templating import label_texts  # here, not at the top: api.templating imports this module

    yield from extract_python(fileobj, keywords, comment_tags, options)
    for text in label_texts():
        yield 0, "_", text, []


def diagram_names(bpmn: str | bytes) -> dict[str, str]:
    """The translations of the element names of a process diagram (Chinese → current language) that the catalog has,
    for diagram.js (`names` beside `lane_labels` in a diagram's JSON); empty in Chinese."""
    from api.extractors import bpmn_names  # here: the extractors are tooling, loaded only when a diagram is shown

    if current_locale() == DEFAULT:
        return {}
    return {name: shown for name in bpmn_names(bpmn) if (shown := gettext(name)) != name}
