"""The file of an approved data release (信息提供, Art. 24): the approved columns only, and the
request's number, purpose and validity on the sheet itself.

The watermark is a visible first line, repeated at the end, in the printed page header and on
every printed page (rows 1-2 repeat), so a copy that travels on is traceable to its approval even
printed. It is a deterrent, not a protection: anyone can delete a row. Streamed in write-only mode
like the export, so a county's 60k rows never sit in memory as cell objects.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

# The export's own helpers: the release is an export with fewer columns and a watermark.
from registry.access import mask_id_number
from registry.code_tables import CodeTables, load_code_tables
from registry.student_files.columns import BY_FIELD, COLUMNS, renderer
from registry.student_files.report import MASKED_FIELDS, _layout, _save, _Writer
from registry.student_files.styles import HEADER_FONT

RELEASE_SHEET = "学生名单"
PARTICULARS_SHEET = "审批信息"
WATERMARK_FONT = Font(bold=True, color="C00000")
_HEADER_MAX = 250


def build_release(students: Iterable[Mapping[str, Any]], *, fields: Sequence[str], mask_id: bool, watermark: str,
                  particulars: Sequence[tuple[str, str]], footer: str = "",
                  codes: CodeTables | None = None) -> tuple[bytes, int]:
    """The XLSX and its row count. Columns are `fields` in the template's order, whatever order they were
    asked in; ID-bearing columns masked unless `mask_id` is False (phones are the caller's to mask).
    `footer` goes to the printed page footer with the page numbers."""
    codes = codes if codes is not None else load_code_tables()
    chosen = set(fields)
    unknown = chosen - set(BY_FIELD)
    if unknown:
        raise ValueError(f"not student fields: {sorted(unknown)}")
    columns = [column for column in COLUMNS if column.field in chosen]
    render = [renderer(column, codes) for column in columns]
    masked = [mask_id and column.field in MASKED_FIELDS for column in columns]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(RELEASE_SHEET)
    writer = _Writer(sheet)
    _layout(sheet, columns, first=0)
    sheet.freeze_panes = "A3"
    sheet.print_title_rows = "1:2"
    # "&" starts a code in Excel's header and footer text: doubled, it prints as itself. Excel refuses
    # a header longer than 255 characters; a long purpose is cut there (the first row has it whole).
    header = watermark.replace("&", "&&")
    sheet.oddHeader.center.text = header if len(header) <= _HEADER_MAX else header[:_HEADER_MAX - 1] + "…"
    sheet.oddFooter.center.text = (footer.replace("&", "&&") + " · " if footer else "") + "第 &P 页，共 &N 页"
    sheet.append([writer.cell(watermark, font=WATERMARK_FONT)])
    writer.header(column.label for column in columns)
    count = 0
    for student in students:
        row = []
        for column, to_sheet, mask in zip(columns, render, masked, strict=True):
            value = student.get(column.field)
            if mask and isinstance(value, str) and value:
                value = mask_id_number(value)
            row.append(writer.cell(to_sheet(value)))
        sheet.append(row)
        count += 1
    sheet.append([writer.cell(f"合计：{count} 人", font=HEADER_FONT)])
    sheet.append([writer.cell(watermark, font=WATERMARK_FONT)])

    about = book.create_sheet(PARTICULARS_SHEET)
    about.column_dimensions["A"].width = 16
    about.column_dimensions["B"].width = 80
    about_writer = _Writer(about)
    about.append([about_writer.cell(watermark, font=WATERMARK_FONT)])
    for label, value in (*particulars, ("人数", f"{count} 人")):
        about.append([about_writer.cell(label, font=HEADER_FONT), about_writer.cell(value)])
    return _save(book), count
