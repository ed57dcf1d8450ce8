"""A user task's instructions, rendered for the page in Chinese and able to render themselves in another language.

The instructions of a BPMN user task are a Jinja template filled with workflow data, so their English cannot be
looked up after rendering: `Instructions` keeps the source and the data, and `translate` renders the catalog's
English source (processes/*.bpmn is extracted, api/extractors.py) with the same data in the same sandbox. Like a
registry message (registry/errors.py) it *is* the Chinese text, and the web layer shows it translated.
"""

from typing import Any, Self

from engine.definitions import Definition
from engine.templates import compile_instructions, render_instructions
from registry.errors import Message


class Instructions(Message):
    data: dict[str, Any]

    def __new__(cls, text: str, /, *, source: str = "", data: dict[str, Any] | None = None) -> Self:
        self = str.__new__(cls, text)
        self.template, self.params, self.data = source, {}, dict(data or {})
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (str(self), self.template, self.data))

    def translate(self, gettext: Any) -> str:
        source = gettext(self.template) if self.template else self.template
        if source == self.template:
            return str(self)  # no translation (a process deployed later with new text): the Chinese as rendered
        try:
            return compile_instructions(source).render(self.data)
        except Exception:  # a translation that no longer fits the data must not break the page: show the Chinese
            return str(self)


def _rebuild(text: str, source: str, data: dict[str, Any]) -> Instructions:
    return Instructions(text, source=source, data=data)


def render(definition: Definition, task_id: str, data: dict[str, Any]) -> Instructions:
    """`engine.templates.render_instructions` (same errors), kept translatable."""
    text = render_instructions(definition, task_id, data)
    task = definition.user_tasks.get(task_id)
    return Instructions(text, source=(task.instructions or "") if task else "", data=data)
