from __future__ import annotations

import math
from typing import Any

from engine.errors import EngineError

# Spiff's serializer treats any dict with this key as one of its own objects and fails to restore it.
_RESERVED_KEY = "typename"


def plain_json(value: Any, *, where: str = "data", element_id: str | None = None) -> Any:
    """A deep copy of `value`, refusing anything that would not survive a JSON round trip unchanged.

    Dates, tuples, sets, Decimals, NaN and non-string keys would either break deserialization or come
    back as something else, so workflow data is held to str/int/float/bool/None/list/dict.
    """
    if value is None or type(value) is str or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refuse(where, "非有限数值 / not a finite number", element_id)
        return value
    if type(value) is list:
        return [plain_json(item, where=f"{where}[{i}]", element_id=element_id) for i, item in enumerate(value)]
    if type(value) is dict:
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _refuse(where, f"键 {key!r} 不是字符串 / key is not a string", element_id)
            if key == _RESERVED_KEY:
                raise _refuse(where, f"键名 {_RESERVED_KEY!r} 为引擎保留 / key is reserved by the engine", element_id)
            copied[key] = plain_json(item, where=f"{where}.{key}", element_id=element_id)
        return copied
    raise _refuse(where, f"类型 {type(value).__name__} 不是 JSON 值 / not a plain JSON value", element_id)


def _refuse(where: str, reason: str, element_id: str | None) -> EngineError:
    return EngineError(f"流程数据 {where}：{reason}", element_id=element_id)
