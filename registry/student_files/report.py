"""Writing students back out: the row report of an upload and the export of a student list.

Both are written in openpyxl's write-only mode, which streams rows instead of holding 60k × 30
cell objects. Every text is written as text: a name or address starting with "=" would otherwise
become a live formula in the registrar's Excel.
"""

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from registry.access import mask_id_number
from registry.code_tables import CodeTables, load_code_tables
from registry.rules.findings import Finding
from registry.student_files.columns import (
    BY_FIELD,
    COLUMNS,
    ERRORS_HEADER,
    ROW_NUMBER_HEADER,
    WARNINGS_HEADER,
    Column,
    column_letter,
    renderer,
)
from registry.student_files.styles import ERROR_FILL, HEADER_FILL, HEADER_FONT, TEXT_FORMAT, WARNING_FILL
from registry.student_files.validation import RowReport

REPORT_SHEET = "导入结果"
SUMMARY_SHEET = "汇总"
EXPORT_SHEET = "学生名单"
SEPARATOR = "；"
# ID numbers appear whole in three fields: 学籍主号 is the ID number, a G 学籍号 is G + ID number.
MASKED_FIELDS = ("id_number", "student_number", "national_student_number")
_MESSAGE_WIDTH = 60


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


class _Writer:
    """Rows of plain values, wrapped in a cell object only where a style or text-safety needs one."""

    def __init__(self, sheet: WriteOnlyWorksheet) -> None:
        self.sheet = sheet

    def cell(self, value: Any, *, fill: PatternFill | None = None, font: Font | None = None) -> Any:
        if fill is None and font is None:
            if value is None or isinstance(value, int | float):
                return value
            value = _plain(value)
            if not (isinstance(value, str) and value.startswith("=")):
                return value
        else:
            value = _plain(value)
        cell = WriteOnlyCell(self.sheet, value=value)
        if isinstance(value, str):
            cell.data_type = "s"
        if fill is not None:
            cell.fill = fill
        if font is not None:
            cell.font = font
        return cell

    def header(self, titles: Iterable[str]) -> None:
        self.sheet.append([self.cell(title, fill=HEADER_FILL, font=HEADER_FONT) for title in titles])


def _layout(sheet: WriteOnlyWorksheet, columns: Sequence[Column], *, first: int) -> None:
    for offset, column in enumerate(columns):
        dimension = sheet.column_dimensions[column_letter(first + offset)]
        dimension.width = column.width
        if column.text_format:
            dimension.number_format = TEXT_FORMAT
    sheet.freeze_panes = "A2"


def _joined(findings: Sequence[Finding]) -> str | None:
    return SEPARATOR.join(f.message for f in findings) or None


def _save(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def build_report(reports: Sequence[RowReport], columns: Sequence[str], *, codes: CodeTables | None = None,
                 problems: Sequence[Finding] = ()) -> bytes:
    """The uploaded rows with their errors and warnings, for the registrar to fix and upload again.

    `columns` are the fields the upload had (`ReadResult.columns`), kept in its order so the report
    looks like the registrar's own sheet; `problems` are the file's own (`ReadResult.problems`).
    """
    codes = codes if codes is not None else load_code_tables()
    shown = [BY_FIELD[f] for f in columns]
    render: list[Callable[[Any], Any]] = [renderer(column, codes) for column in shown]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(REPORT_SHEET)
    writer = _Writer(sheet)
    sheet.column_dimensions["A"].width = 8
    _layout(sheet, shown, first=1)
    for letter in (column_letter(len(shown) + 1), column_letter(len(shown) + 2)):
        sheet.column_dimensions[letter].width = _MESSAGE_WIDTH
    writer.header([ROW_NUMBER_HEADER, *(column.header for column in shown), ERRORS_HEADER, WARNINGS_HEADER])

    with_errors = with_warnings_only = 0
    for report in sorted(reports, key=lambda r: r.row_number):
        fill = ERROR_FILL if report.errors else WARNING_FILL if report.warnings else None
        with_errors += bool(report.errors)
        with_warnings_only += bool(report.warnings and not report.errors)
        values = [report.row_number, *(to_sheet(report.data.get(column.field))
                                       for column, to_sheet in zip(shown, render, strict=True)),
                  _joined(report.errors), _joined(report.warnings)]
        sheet.append([writer.cell(value, fill=fill) for value in values])

    summary = book.create_sheet(SUMMARY_SHEET)
    summary.column_dimensions["A"].width = 24
    summary.column_dimensions["B"].width = 80
    for label, count in (("学生行数", len(reports)), ("有错误的行（红色）", with_errors),
                         ("只有提示的行（黄色）", with_warnings_only), ("没有问题的行", len(reports) - with_errors - with_warnings_only)):
        summary.append([label, count])
    for problem in problems:
        summary.append(["文件问题" if problem.severity == "error" else "文件提示", _Writer(summary).cell(problem.message)])
    return _save(book)


def build_export(students: Sequence[Mapping[str, Any]], *, mask_id: bool, codes: CodeTables | None = None) -> bytes:
    """A student list as XLSX, one row per student in the import template's columns, and a count."""
    codes = codes if codes is not None else load_code_tables()
    render = [renderer(column, codes) for column in COLUMNS]
    masked = {index for index, column in enumerate(COLUMNS) if mask_id and column.field in MASKED_FIELDS}
    book = Workbook(write_only=True)
    sheet = book.create_sheet(EXPORT_SHEET)
    writer = _Writer(sheet)
    _layout(sheet, COLUMNS, first=0)
    writer.header(column.label for column in COLUMNS)
    for student in students:
        row = []
        for index, (column, to_sheet) in enumerate(zip(COLUMNS, render, strict=True)):
            value = student.get(column.field)
            if index in masked and isinstance(value, str) and value:
                value = mask_id_number(value)
            row.append(writer.cell(to_sheet(value)))
        sheet.append(row)
    sheet.append([writer.cell(f"合计：{len(students)} 人", font=HEADER_FONT)])
    return _save(book)
