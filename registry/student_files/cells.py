"""What one spreadsheet cell means for the column it is in.

A reader hands cells over as str, float, bool, date or datetime. Each column kind has a converter
that turns them into what `normalise_student` expects, or raises `CellProblem` when the cell has
already lost information (an ID number stored as a number) and a guess would be a wrong record.
Text that merely looks odd is passed on unchanged for `check_student` to judge.
"""

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from registry.code_tables import CodeTables
from registry.student_files.columns import CellKind, Column

Converter = Callable[[Any], Any]


class CellProblem(ValueError):
    """`detail` follows the column label in the row's message; `shown` is kept as the cell's value,
    so the row report shows the registrar what arrived."""

    def __init__(self, code: str, detail: str, shown: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.shown = shown


# Excel writes numbers of more than 11 digits in a General cell as 5.20102E+17, and a CSV saved
# from such a sheet keeps that text.
_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]+)?[eE][+-]?[0-9]+")
_MOBILE_DIGITS = re.compile(r"1[3-9][0-9]{9}")
# "06 苗族", "06苗族", "06-苗族": the dropdown form, and what people type imitating it.
_CODE_AND_LABEL = re.compile(r"([0-9A-Za-z]{1,4})\s*[-_.、:：]?\s*([^0-9\s].*)")
_AREA_AND_NAME = re.compile(r"([0-9]{6})\s*[^0-9].*")
_YEAR_DOT_MONTH = re.compile(r"([0-9]{4})\.([0-9]{1,2})")
_CHINESE_DIGITS = "一二三四五六七八九"
_GRADE = re.compile(r"([1-9一二三四五六七八九])年级|初([一二三])|([1-9])")
_HEIGHT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:cm|厘米|公分)?", re.IGNORECASE)
# 斤 is half a kilogram: "52斤" is left alone, for check_student to refuse as no number.
_WEIGHT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(?:kg|千克|公斤)?", re.IGNORECASE)
_TRUE = frozenset(("是", "y", "yes", "true", "1", "1是", "√"))
_FALSE = frozenset(("否", "n", "no", "false", "0", "0否", "×"))

# Serial day numbers are read as dates only inside this window: a bare 2012 in a date column is
# a year typed alone, not 4 July 1905.
_SERIAL_FIRST = (date(1950, 1, 1) - date(1899, 12, 30)).days
_SERIAL_LAST = (date(2100, 1, 1) - date(1899, 12, 30)).days


def number_text(value: int | float) -> str:
    """A number as Excel shows it in a cell formatted "0": 520102201203041000, 26.5."""
    if isinstance(value, float) and value.is_integer():
        # Excel keeps 15 significant digits; the binary float holds noise beyond them.
        return str(int(Decimal(f"{value:.15g}"))) if abs(value) >= 1e15 else str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _serial_date(value: float, date1904: bool) -> date | None:
    # Excel's 1900 system counts from 1899-12-30 for every date after February 1900 (its phantom
    # 29 February 1900 shifts the start by a day); Mac workbooks of old use the 1904 system.
    if date1904:
        value += 1462
    if not _SERIAL_FIRST <= value < _SERIAL_LAST:
        return None
    return date(1899, 12, 30) + timedelta(days=int(value))


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if _is_number(value):
        return number_text(value)
    return value


def converter(column: Column, codes: CodeTables, *, date1904: bool = False) -> Converter:
    """The converter for one column; code columns memoise, since a sheet repeats a few values."""
    label = column.label
    kind = column.kind

    if kind is CellKind.identifier:
        def identifier(value: Any) -> Any:
            if _is_number(value):
                shown = number_text(value)
                raise CellProblem("stored_as_number", (
                    f"单元格是数字格式（读到 {shown}），Excel 会丢掉开头的 0、末位的 X 和第 15 位以后的数字："
                    f"请把“{label}”列设置为“文本”格式，重新填写完整号码后再上传"), shown)
            text = _text(value)
            if isinstance(text, str) and _SCIENTIFIC.fullmatch(text):
                raise CellProblem("stored_as_number", (
                    f"“{text}”是科学计数法，号码已经丢失：请在 Excel 中把“{label}”列设置为“文本”格式，"
                    "重新填写完整号码后再上传"), text)
            return text
        return identifier

    if kind is CellKind.phone:
        def phone(value: Any) -> Any:
            if _is_number(value):
                shown = number_text(value)
                # A mobile number never starts with 0, so as a number it is intact; a landline has
                # lost its area code's 0.
                if _MOBILE_DIGITS.fullmatch(shown):
                    return shown
                raise CellProblem("stored_as_number", (
                    f"单元格是数字格式（读到 {shown}），固定电话区号开头的 0 已经丢失："
                    f"请把“{label}”列设置为“文本”格式后重新填写"), shown)
            text = _text(value)
            if isinstance(text, str) and _SCIENTIFIC.fullmatch(text):
                raise CellProblem("stored_as_number", f"“{text}”是科学计数法，号码已经丢失：请重新填写", text)
            return text
        return phone

    if kind is CellKind.code:
        assert column.code_table is not None
        return _code_converter(column.code_table, codes)

    if kind is CellKind.area:
        table = column.code_table if column.code_table in codes.names() else None

        def area(value: Any) -> Any:
            text = _text(value)
            if not isinstance(text, str):
                return text
            text = unicodedata.normalize("NFKC", text).strip()
            if match := _AREA_AND_NAME.fullmatch(text):
                return match[1]
            if table is not None and (code := codes.resolve_label(table, text)) is not None:
                return code
            return text
        return area

    if kind is CellKind.flag:
        def flag(value: Any) -> Any:
            if isinstance(value, bool):
                return value
            if _is_number(value) and value in (0, 1):
                return bool(value)
            if isinstance(value, str):
                key = "".join(unicodedata.normalize("NFKC", value).split()).lower()
                if not key:
                    return None
                if key in _TRUE:
                    return True
                if key in _FALSE:
                    return False
            return _text(value)
        return flag

    if kind is CellKind.date:
        def birth(value: Any) -> Any:
            if _is_number(value):
                # 20120304 typed into a General cell is a date written without separators.
                if float(value).is_integer() and 19000101 <= value <= 21001231:
                    return str(int(value))
                serial = _serial_date(value, date1904)
                return serial.isoformat() if serial is not None else number_text(value)
            return _text(value)
        return birth

    if kind is CellKind.month:
        def month(value: Any) -> Any:
            if isinstance(value, date):  # datetime too
                return f"{value.year:04d}-{value.month:02d}"
            if not _is_number(value):
                return _text(value)
            if float(value).is_integer() and 190001 <= value <= 210012:
                return str(int(value))
            serial = _serial_date(value, date1904)
            if serial is not None:
                return f"{serial.year:04d}-{serial.month:02d}"
            shown = number_text(value)
            if match := _YEAR_DOT_MONTH.fullmatch(shown):
                # Typed as 2023.10 in a General cell, the number is 2023.1: October and January
                # look the same. Every other month survives (2023.9, 2023.09, 2023.11).
                if match[2] == "1":
                    raise CellProblem("ambiguous_month", (
                        f"单元格是数字 {shown}，分不清是 1 月还是 10 月：请把“{label}”列设置为“文本”格式，"
                        "按 2023-10 的样式重新填写"), shown)
                return f"{match[1]}-{int(match[2]):02d}"
            return shown
        return month

    if kind is CellKind.grade:
        def grade(value: Any) -> Any:
            if _is_number(value) and float(value).is_integer():
                return int(value)
            text = _text(value)
            if not isinstance(text, str):
                return text
            key = "".join(unicodedata.normalize("NFKC", text).split())
            if match := _GRADE.fullmatch(key):
                if match[1]:
                    digit = match[1]
                    return int(digit) if digit.isdigit() else _CHINESE_DIGITS.index(digit) + 1
                if match[2]:
                    return _CHINESE_DIGITS.index(match[2]) + 7  # 初一 is grade 7
                return int(match[3])
            return text
        return grade

    if kind is CellKind.measure:
        pattern = _HEIGHT if column.field == "height_cm" else _WEIGHT

        def measure(value: Any) -> Any:
            if _is_number(value):
                return float(value)
            text = _text(value)
            if isinstance(text, str) and (match := pattern.fullmatch(unicodedata.normalize("NFKC", text))):
                return float(match[1])
            return text
        return measure

    return _text


def _code_converter(table: str, codes: CodeTables) -> Converter:
    valid = {item.code for item in codes.table(table)}
    digit_widths = {len(code) for code in valid if code.isdigit()}
    # "6" means 06 only where every numeric code has the same width (民族 01–98, not 入学方式).
    width = digit_widths.pop() if len(digit_widths) == 1 else None
    seen: dict[str, Any] = {}

    def as_code(text: str) -> str | None:
        upper = text.upper()
        if upper in valid:
            return upper
        if width is not None and upper.isascii() and upper.isdigit():
            padded = str(int(upper)).zfill(width)
            if padded in valid:
                return padded
        return None

    def resolve(text: str) -> Any:
        key = unicodedata.normalize("NFKC", text).strip()
        if not key:
            return None
        if (code := as_code(key)) is not None:
            return code
        if (code := codes.resolve_label(table, key)) is not None:
            return code
        if match := _CODE_AND_LABEL.fullmatch(key):
            code, named = as_code(match[1]), codes.resolve_label(table, match[2])
            if code is not None and named is not None and code != named:
                raise CellProblem("code_label_mismatch",
                                  f"“{key}”中代码 {code} 与名称“{match[2]}”（代码 {named}）不一致", key)
            if code is not None:
                return code
        return key

    def code_cell(value: Any) -> Any:
        if _is_number(value) and float(value).is_integer():
            value = str(int(value))
        if not isinstance(value, str):
            return _text(value)
        if value not in seen:
            try:
                seen[value] = resolve(value)
            except CellProblem as problem:
                seen[value] = problem
        found = seen[value]
        if isinstance(found, CellProblem):
            raise found
        return found

    return code_cell
