"""User-task instructions (`spiffworkflow:instructionsForEndUser`), rendered in Jinja's sandbox.

Instructions are written by process admins and filled with workflow data; the sandbox refuses
`__class__`/`__mro__`-style attribute walks and unsafe `str.format` calls. The result is plain text
(Markdown at most): pages escape it like any other value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import EngineError, ScriptError

if TYPE_CHECKING:
    from engine.definitions import Definition

class _InstructionsEnvironment(SandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # The stock sandbox returns an Undefined that prints as "", so `{{ x.__class__ }}` renders
        # silently; an author probing the sandbox should get an error instead. Missing data stays lenient.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


# One environment for all threads: it is configured once and Jinja environments are safe to share.
_ENVIRONMENT = _InstructionsEnvironment(autoescape=False)


@lru_cache(maxsize=1024)
def compile_instructions(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


def render_instructions(definition: Definition, task_id: str, data: dict[str, Any]) -> str:
    task = definition.user_tasks.get(task_id)
    if task is None:
        raise EngineError(f"流程中没有用户任务 {task_id} / no such user task", element_id=task_id)
    if not task.instructions:
        return ""
    try:
        return compile_instructions(task.instructions).render(data)
    except TemplateError as exc:
        raise ScriptError(f"任务说明渲染失败 / instructions failed to render: {exc}", element_id=task_id) from exc
    except Exception as exc:
        raise ScriptError(
            f"任务说明渲染失败 / instructions failed to render: {type(exc).__name__}: {exc}", element_id=task_id
        ) from exc
