"""The restricted script environment every BPMN expression and script runs in.

Spiff's default environment is plain `eval`/`exec` with the task data as globals, and its documented
`safe_globals` can be escaped through `().__class__.__base__.__subclasses__()`. Here the source is
compiled by RestrictedPython (which refuses `_`-prefixed names and attributes at compile time and
routes every attribute, item and iteration access through a guard at run time), and runs with a
small builtins table that has no `__import__`, `open`, `getattr` on dunders, `type` or `format`.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.errors import EngineError, ScriptError
from engine.task_data import plain_json

Services = Mapping[str, Callable[[dict], Any]]


class RefusedSource(ValueError):
    """Source text the restricted compiler will not compile; the message is the compiler's."""


_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    try:
        return _INPLACE_OPERATORS[op](target, value)
    except KeyError:
        raise TypeError(f"operator {op} is not allowed") from None


def _getitem(container: Any, key: Any) -> Any:
    return container[key]


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def _guarded_getattr(obj: Any, name: str, default: Any = None) -> Any:
    return safer_getattr(obj, name, default)


_BUILTINS: dict[str, Any] = {
    "None": None,
    "True": True,
    "False": False,
    "abs": abs,
    "all": all,
    "any": any,
    "bool": bool,
    "dict": dict,
    "divmod": divmod,
    "enumerate": enumerate,
    "filter": filter,
    "float": float,
    "getattr": _guarded_getattr,
    "int": int,
    "isinstance": isinstance,
    "len": len,
    "list": list,
    "map": map,
    "max": max,
    "min": min,
    "range": range,
    "reversed": reversed,
    "round": round,
    "set": set,
    "sorted": sorted,
    "str": str,
    "sum": sum,
    "tuple": tuple,
    "zip": zip,
    "Exception": Exception,
    "IndexError": IndexError,
    "KeyError": KeyError,
    "TypeError": TypeError,
    "ValueError": ValueError,
    "ZeroDivisionError": ZeroDivisionError,
}

# Placed after the task data when globals are assembled, so a data key can never replace a guard.
_GUARDS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_apply_": _apply,
}


# Keyed by source text: every instance of a deployed version evaluates the same few dozen strings.
@lru_cache(maxsize=4096)
def compile_expression(source: str) -> CodeType:
    return _compiled(compile_restricted_eval, source.strip(), "<expression>")


@lru_cache(maxsize=4096)
def compile_script(source: str) -> CodeType:
    return _compiled(compile_restricted_exec, source, "<script>")


def _compiled(compiler: Callable[..., Any], source: str, filename: str) -> CodeType:
    try:
        result = compiler(source, filename=filename)
    except Exception as exc:  # NUL bytes, absurd nesting: refused like any other bad source
        raise RefusedSource(f"{type(exc).__name__}: {exc}") from None
    if result.code is None:
        raise RefusedSource("; ".join(result.errors) or "cannot compile")
    code: CodeType = result.code
    return code


def _globals(context: Mapping[str, Any], external_context: Mapping[str, Any] | None) -> dict[str, Any]:
    env: dict[str, Any] = dict(external_context or {})
    env.update(context)
    env.update(_GUARDS)
    return env


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    def __init__(self, services: Services) -> None:
        super().__init__({})
        self.services = services

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        return eval(compile_expression(expression), _globals(context, external_context))

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        env = _globals(context, external_context)
        exec(compile_script(script), env)
        hidden = set(_GUARDS) | set(external_context or {})
        for key in [k for k in context if k not in env]:
            del context[key]
        for key, value in env.items():
            # Helper functions a script defines stay inside the script, as with Spiff's own environment.
            if key in hidden or callable(value) or isinstance(value, ModuleType):
                continue
            context[key] = plain_json(value, where=key)
        return True

    def call_service(self, context: dict, operation_name: str = "", operation_params: dict | None = None, **kwargs: Any) -> str:
        function = self.services[operation_name]
        params = {name: param["value"] for name, param in (operation_params or {}).items()}
        result = function(params)
        # ServiceTask json.loads what we return; checking first keeps dates and sets out of the state.
        return json.dumps(plain_json(result, where=f"{operation_name}()"))


class ScriptEngine(PythonScriptEngine):
    """One per unit of work: it carries that call's services and clock, so workflows on other threads never share them."""

    def __init__(self, services: Services, now: datetime | None = None) -> None:
        super().__init__(environment=RestrictedEnvironment(services))
        self.now = now

    def validate(self, expression: str) -> None:
        compile_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: dict | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ScriptError:
            raise
        except Exception as exc:
            raise _script_error(task, f"表达式 {expression!r} 求值失败 / expression failed", exc) from exc

    def execute(self, task: Any, script: str, external_context: dict | None = None) -> bool:
        try:
            return self.environment.execute(script, task.data, external_context)
        except ScriptError:
            raise
        except Exception as exc:
            raise _script_error(task, "脚本执行失败 / script failed", exc) from exc

    def call_service(self, task: Any, **kwargs: Any) -> str:
        name = kwargs.get("operation_name", "")
        if name not in self.environment.services:
            raise ScriptError(f"服务 {name!r} 未注册 / unknown service operator", element_id=element_id(task))
        try:
            return self.environment.call_service(task.data, **kwargs)
        except ScriptError:
            raise
        except Exception as exc:
            # The cause stays attached so the caller can still see e.g. a registry Conflict.
            raise _script_error(task, f"服务 {name!r} 调用失败 / service failed", exc) from exc


def element_id(task: Any) -> str:
    spec = task.task_spec
    return getattr(spec, "bpmn_id", None) or spec.name


def _script_error(task: Any, what: str, exc: Exception) -> ScriptError:
    if isinstance(exc, RefusedSource):
        return ScriptError(f"{what}：沙箱拒绝 / refused by the sandbox: {exc}", element_id=element_id(task))
    if isinstance(exc, EngineError):
        return ScriptError(f"{what}：{exc.message}", element_id=element_id(task))
    return ScriptError(f"{what}：{type(exc).__name__}: {exc}", element_id=element_id(task))
