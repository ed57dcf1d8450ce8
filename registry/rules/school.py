"""The school record of Art. 11: pure checks, with Chinese messages naming the field."""

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from registry.code_tables import CodeTables
from registry.errors import msg
from registry.rules.findings import Finding, labelled

SCHOOL_LABELS = {
    "code": "学校代码", "name": "学校名称", "sponsor_type": "举办者类型", "urban_rural": "驻地城乡类别",
    "school_type": "办学类型", "subsidy_rate": "补助标准", "meal_model": "供餐模式", "address": "学校地址",
    "postcode": "邮政编码", "phone": "联系电话", "fax": "传真", "email": "电子邮箱", "website": "网站主页地址",
    "principal_name": "校长姓名", "principal_phone": "校长固定电话", "principal_mobile": "校长手机号码",
}
SCHOOL_FIELDS = tuple(SCHOOL_LABELS)
# Editable by the county; the code is the school's identity and never changes.
EDITABLE_FIELDS = tuple(f for f in SCHOOL_FIELDS if f != "code")
CODE_FIELDS = ("sponsor_type", "urban_rural", "school_type", "meal_model")

_SCHOOL_CODE = re.compile(r"\d{10}")  # 学校标识码: 10 digits
_POSTCODE = re.compile(r"\d{6}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(-\d{1,6})?")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_WEBSITE = re.compile(r"(https?://)?[\w-]+(\.[\w-]+)+(/\S*)?", re.ASCII)
# 补助标准 in 元/天: the national rate is 5 (2021); a county top-up may add to it.
_MAX_RATE = Decimal("20")


def _error(field: str, code: str, detail: str) -> Finding:
    return Finding(field=field, code=code, message=labelled(SCHOOL_LABELS[field], detail), severity="error")


def check_school(data: Mapping[str, Any], *, codes: CodeTables) -> list[Finding]:
    """Errors for the fields present in `data` (a whole record or a partial update)."""
    out: list[Finding] = []
    for field in data:
        if field not in SCHOOL_LABELS:
            out.append(Finding(field=field, code="unknown_field", message=msg("{field}：不是学校信息的字段", field=field),
                               severity="error"))
    def text(field: str) -> str | None:
        value = data.get(field)
        return value.strip() if isinstance(value, str) and value.strip() else None

    if "code" in data and not (text("code") and _SCHOOL_CODE.fullmatch(text("code") or "")):
        out.append(_error("code", "format", msg("应为 10 位数字的学校标识码")))
    if "name" in data and not text("name"):
        out.append(_error("name", "required", msg("不能为空")))
    for field in CODE_FIELDS:
        if field in data and data[field] not in (None, "") and not codes.contains(field, str(data[field])):
            out.append(_error(field, "code", msg("代码 {code} 不在代码表中", code=data[field])))
    if data.get("subsidy_rate") not in (None, ""):
        try:
            rate = Decimal(str(data["subsidy_rate"]))
        except InvalidOperation:
            out.append(_error("subsidy_rate", "type", msg("应为数字（元/天）")))
        else:
            if not Decimal("0") < rate <= _MAX_RATE or rate != rate.quantize(Decimal("0.01")):
                out.append(_error("subsidy_rate", "range", msg("应在 0 到 {max_rate} 元/天之间，最多两位小数", max_rate=_MAX_RATE)))
    if text("postcode") and not _POSTCODE.fullmatch(text("postcode") or ""):
        out.append(_error("postcode", "format", msg("应为 6 位数字")))
    for field in ("phone", "fax", "principal_phone"):
        value = text(field)
        if value and not (_LANDLINE.fullmatch(value) or _MOBILE.fullmatch(value)):
            out.append(_error(field, "format", msg("应为固定电话（如 0851-12345678）或手机号码")))
    if text("principal_mobile") and not _MOBILE.fullmatch(text("principal_mobile") or ""):
        out.append(_error("principal_mobile", "format", msg("应为 11 位手机号码")))
    if text("email") and not _EMAIL.fullmatch(text("email") or ""):
        out.append(_error("email", "format", msg("格式不正确")))
    if text("website") and not _WEBSITE.fullmatch(text("website") or ""):
        out.append(_error("website", "format", msg("格式不正确")))
    return out
