"""Reports as XLSX workbooks: the Art. 12 school and county reports and custom report results.

Aggregate figures only: a list of pupils leaves the system through the data-release process
(registry/data_releases.py), never through these files.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from registry.custom_reports import Table
from registry.reports import FIGURES, Report, Tally

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY = "0.00"
BOLD = Font(bold=True)
MONEY_FIGURES = ("subsidy_rate", "subsidy_total", "boarding_allowance_total")
# The standard report's columns: the school, then Art. 12's figures, then 一补 apart.
REPORT_COLUMNS = {"school_code": "学校代码", "school_name": "学校名称", "school_type_label": "办学类型",
                  **{k: v for k, v in FIGURES.items() if k != "meal_model"}, "meal_model_label": "供餐模式",
                  "boarding_allowance_total": "一补金额（元）"}


def _cell(sheet: Worksheet, value: object, *, bold: bool = False) -> Cell:
    cell = Cell(sheet, value=float(value) if isinstance(value, Decimal) else value)
    if isinstance(value, str):
        # A school or class name starting with "=" would otherwise be written as a formula.
        cell.data_type = "s"
    elif isinstance(value, (Decimal, float)):
        cell.number_format = MONEY
    if bold:
        cell.font = BOLD
    return cell


def _sheet(title: str, subtitle: str, headings: Sequence[str], rows: Iterable[Sequence[object]],
           totals: Sequence[object], sheet_name: str) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = sheet_name
    sheet.append([_cell(sheet, title, bold=True)])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([_cell(sheet, subtitle)])
    sheet.append([_cell(sheet, h, bold=True) for h in headings])
    for row in rows:
        sheet.append([_cell(sheet, v) for v in row])
    sheet.append([_cell(sheet, v, bold=True) for v in totals])
    for index, heading in enumerate(headings, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(30, len(heading) * 2 + 2))
    for cell in sheet[3]:
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    sheet.freeze_panes = "A4"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _totals_row(tally: Tally, schools: int) -> list[object]:
    counts = tally.counts()
    values: list[object] = []
    for key in REPORT_COLUMNS:
        if key == "school_code":
            values.append(f"合计（{schools} 所）")
        elif key in counts:
            values.append(counts[key])
        elif key == "subsidy_total":
            values.append(tally.subsidy_total)
        elif key == "boarding_allowance_total":
            values.append(tally.boarding_allowance_total)
        else:
            values.append(None)
    return values


def report_xlsx(report: Report) -> bytes:
    """A school's report (one row) or a county's (one row per beneficiary school), with a totals row."""
    county_wide = report.unit.kind != "school"
    rows = [[Decimal(str(row[k])) if k in MONEY_FIGURES else row[k] for k in REPORT_COLUMNS]
            for row in (s.as_json() for s in report.schools)]
    title = f"{report.unit.name} {'县级' if county_wide else ''}常规统计报表"
    subtitle = f"统计期间：{report.label}（{' 至 '.join(report.period_json()[k] for k in ('first_month', 'last_month'))}）" \
        "；人数按学生去重，金额逐月相加"
    return _sheet(title, subtitle, list(REPORT_COLUMNS.values()), rows,
                  _totals_row(report.totals, len(report.schools)), "常规统计报表")


def report_file_name(report: Report) -> str:
    return f"{report.unit.name}-常规统计报表-{report.label}.xlsx".replace(" ", "")


def table_xlsx(table: Table) -> bytes:
    """A custom report's rows (labels, then measures) and its totals row."""
    dimensions, measures = table.definition.dimensions, table.definition.measures
    grouped = "、".join(h for h in table.headings()[:len(dimensions)]) or "不分组"
    subtitle = f"统计期间：{table.definition.period}；分组：{grouped}；合计中的人数按学生去重，金额相加"
    # Without dimensions the one group is the totals: the file has its totals row only.
    rows = [table.labels(key) + [group.measure(m) for m in measures] for key, group in table.rows] if dimensions else []
    lead = ["合计"] + [""] * (len(dimensions) - 1) if dimensions else ["合计"]
    headings = table.headings() if dimensions else ["", *table.headings()]
    return _sheet(table.title, subtitle, headings, rows, lead + [table.totals.measure(m) for m in measures],
                  "自定义报表")


def table_file_name(table: Table, name: str | None = None) -> str:
    return f"{name or '自定义报表'}-{table.definition.period}.xlsx".replace(" ", "").replace("/", "-")
