"""The columns of the student import template, the row report and the export, and how headers match.

One column per student field of the contract (DESIGN "Student fields"), in the order a registrar
fills them in: the person, the ID, the school place, then the plan's own fields and the numbers.
"""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from registry.code_tables import CodeTables
from registry.rules.student import AREA_TABLE, CODE_FIELDS, FIELD_LABELS, REQUIRED_FIELDS


class CellKind(StrEnum):
    """How a cell of the column is read: decides what a number, a date or a label in it means."""

    text = "text"
    # Numbers whose digits must survive exactly (leading zeros, a trailing X, 18 digits): a cell
    # stored as a number has already lost them, so it is refused, never guessed back.
    identifier = "identifier"
    phone = "phone"
    code = "code"
    area = "area"
    flag = "flag"
    date = "date"
    month = "month"
    grade = "grade"
    measure = "measure"


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    kind: CellKind
    width: int  # Excel character widths; Chinese characters count two
    hint: str  # one line for the 填表说明 sheet and the header comment
    code_table: str | None = None

    @property
    def label(self) -> str:
        return FIELD_LABELS[self.field]

    @property
    def required(self) -> bool:
        return self.field in REQUIRED_FIELDS

    @property
    def header(self) -> str:
        """The header written into the template and the row report; the star marks a required column."""
        return f"{self.label}*" if self.required else self.label

    @property
    def text_format(self) -> bool:
        # Excel turns 0851…, 5201…X and 2023.10 typed into a General cell into numbers and loses
        # digits; a column formatted as text keeps what was typed. Only the measures stay numbers.
        return self.kind is not CellKind.measure


def _col(field: str, kind: CellKind, width: int, hint: str) -> Column:
    return Column(field, kind, width, hint, field if field in CODE_FIELDS else None)


COLUMNS: tuple[Column, ...] = (
    _col("name", CellKind.text, 12, "与户口簿一致"),
    _col("former_name", CellKind.text, 12, "没有则不填"),
    _col("sex", CellKind.code, 8, "从下拉列表选择，须与身份证件号一致"),
    _col("birth_date", CellKind.date, 13, "如 2015-03-14，须与身份证件号一致"),
    _col("id_type", CellKind.code, 16, "从下拉列表选择，一般为“1 居民身份证”"),
    _col("id_number", CellKind.identifier, 22, "18 位，末位可为 X；本列为文本格式，不要改成数字"),
    _col("ethnicity", CellKind.code, 14, "从下拉列表选择"),
    Column("hukou_area", CellKind.area, 12, "6 位行政区划代码，如 520102", AREA_TABLE),
    _col("hukou_address", CellKind.text, 30, "户口簿上的地址"),
    # 学校标识码 never starts with 0 and has 10 digits: a number cell holds it exactly.
    _col("school_code", CellKind.text, 14, "10 位学校标识码"),
    _col("grade", CellKind.grade, 8, "1–9，如 3 或“三年级”“初一”"),
    _col("class_name", CellKind.text, 14, "如 三年级（1）班"),
    _col("enrolled_month", CellKind.month, 12, "如 2023-09"),
    _col("enrolment_mode", CellKind.code, 12, "从下拉列表选择"),
    _col("boarding_mode", CellKind.code, 10, "从下拉列表选择：走读或住校"),
    _col("health", CellKind.code, 14, "从下拉列表选择"),
    _col("height_cm", CellKind.measure, 8, "厘米，如 128"),
    _col("weight_kg", CellKind.measure, 8, "千克，如 26.5"),
    _col("left_behind", CellKind.code, 14, "从下拉列表选择"),
    _col("migrant_child", CellKind.flag, 10, "是 或 否"),
    _col("boarding_allowance", CellKind.flag, 10, "是 或 否；只有住校生可以享受"),
    _col("address", CellKind.text, 30, "现在居住的地址"),
    _col("guardian_name", CellKind.text, 12, ""),
    _col("guardian_phone", CellKind.phone, 15, "手机号，或带区号的固定电话如 0851-8123456"),
    _col("file_card_no", CellKind.identifier, 16, "没有则不填"),
    _col("student_number", CellKind.identifier, 22, "学籍主号，一般为身份证件号"),
    _col("student_number_aux", CellKind.text, 10, "兄弟姐妹共用监护人的身份证件号作主号时，用辅号区分"),
    _col("national_student_number", CellKind.identifier, 22, "G、J 或 L 开头，没有则不填"),
)

BY_FIELD: dict[str, Column] = {column.field: column for column in COLUMNS}

# Columns the row report adds; a registrar who fixes the report and uploads it again must not be
# told about them.
ROW_NUMBER_HEADER = "原行号"
ERRORS_HEADER = "错误"
WARNINGS_HEADER = "提示"
REPORT_HEADERS = (ROW_NUMBER_HEADER, ERRORS_HEADER, WARNINGS_HEADER)

# Other names the same columns carry in county and school spreadsheets in circulation.
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("学生姓名",),
    "birth_date": ("出生年月日",),
    "id_type": ("证件类型",),
    "id_number": ("身份证号", "身份证号码", "身份证件号码", "公民身份号码", "证件号码"),
    "hukou_area": ("户口所在地",),
    "student_number": ("学籍主号",),
    "student_number_aux": ("辅号",),
    "national_student_number": ("全国学籍号码", "国家学籍号"),
    "guardian_phone": ("监护人联系电话",),
    "left_behind": ("是否留守儿童",),
    "migrant_child": ("是否随迁子女",),
    "boarding_allowance": ("是否享受一补",),
}
_REQUIRED_MARK = re.compile(r"^\*+|\*+$|\(必填\)$|\(选填\)$")
_TRAILING_NOTE = re.compile(r"\([^()]*\)$")


def header_key(text: str) -> str:
    # NFKC folds full-width brackets, stars and spaces to their ASCII forms, so one pattern fits
    # "姓名（必填）", "姓名 (必填)" and "姓名＊".
    key = "".join(unicodedata.normalize("NFKC", text).split()).lower()
    previous = None
    while key != previous:
        previous, key = key, _REQUIRED_MARK.sub("", key)
    return key


_BY_HEADER: dict[str, str] = {}
for _column in COLUMNS:
    for _name in (_column.label, _column.field, *_ALIASES.get(_column.field, ())):
        _BY_HEADER[header_key(_name)] = _column.field
_IGNORED = frozenset(header_key(h) for h in REPORT_HEADERS)


def match_header(text: Any) -> str | None:
    """The field a header cell names, or None."""
    if not isinstance(text, str):
        return None
    key = header_key(text)
    if key in _BY_HEADER:
        return _BY_HEADER[key]
    # "身高（厘米）", "入学年月(YYYY-MM)": a unit or a format note after the name.
    return _BY_HEADER.get(_TRAILING_NOTE.sub("", key))


def is_report_header(text: Any) -> bool:
    return isinstance(text, str) and header_key(text) in _IGNORED


def code_display(code: str, label: str) -> str:
    """The "06 苗族" form used in the dropdowns, the row report and the export."""
    return f"{code} {label}"


def renderer(column: Column, codes: CodeTables) -> Callable[[Any], Any]:
    """How a stored value of the column reads in a sheet: codes with their label, flags as 是/否."""
    if column.code_table is not None and column.code_table in codes.names():
        labels = {item.code: code_display(item.code, item.label) for item in codes.table(column.code_table)}
        return lambda value: labels.get(value, value) if isinstance(value, str) else value
    if column.kind is CellKind.flag:
        return lambda value: ("是" if value else "否") if isinstance(value, bool) else value
    return lambda value: value


def column_letter(index: int) -> str:
    """0 → A, 27 → AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
