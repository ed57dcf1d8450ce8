"""The XLSX template a school downloads, fills in and uploads for its initial load (Art. 13)."""

import io

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.utils import quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from registry.code_tables import CodeTables, load_code_tables
from registry.student_files.columns import COLUMNS, CellKind, Column, code_display, column_letter
from registry.student_files.reader import MAX_ROWS
from registry.student_files.styles import HEADER_FILL, HEADER_FONT, REQUIRED_FONT, TEXT_FORMAT, WRAP

DATA_SHEET = "学生信息"
GUIDE_SHEET = "填表说明"
# Hidden: a dropdown's inline list is capped at 255 characters, which 民族 alone exceeds.
CODES_SHEET = "代码表"
_LAST_ROW = MAX_ROWS + 1
_GRADES = ",".join(str(g) for g in range(1, 10))

_GENERAL_NOTES = (
    "每行填写一名学生，第 1 行为表头，请勿修改、删除或调换表头；带 * 的列必须填写。",
    "身份证件号、电话、学籍号等列已设置为“文本”格式：请勿改为数字格式，否则 Excel 会丢掉末位的 X、开头的 0 和第 15 位以后的数字。",
    "从其他表格粘贴时请使用“选择性粘贴 → 数值”，以免带入公式或改变单元格格式。",
    "代码列请从下拉列表选择；也可以只填代码（如 06）或名称（如 苗族）。",
    "日期可写作 2015-03-14、2015/3/14、20150314 或 2015年3月14日；入学年月写作 2023-09。",
    "保存为 .xlsx 上传；也可另存为 CSV（UTF-8 或 GB18030 编码）。",
)


def _choices(column: Column, codes: CodeTables) -> list[str] | None:
    if column.code_table is not None and column.code_table in codes.names():
        return [code_display(item.code, item.label) for item in codes.table(column.code_table)]
    return None


def build_template(codes: CodeTables | None = None) -> bytes:
    codes = codes if codes is not None else load_code_tables()
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    sheet.title = DATA_SHEET
    guide = book.create_sheet(GUIDE_SHEET)
    lists = book.create_sheet(CODES_SHEET)
    lists.sheet_state = "hidden"

    list_column = 0
    for index, column in enumerate(COLUMNS):
        letter = column_letter(index)
        cell = sheet.cell(row=1, column=index + 1, value=column.header)
        cell.font = REQUIRED_FONT if column.required else HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = WRAP
        if column.hint:
            cell.comment = Comment(column.hint, "mealroll", width=220, height=70)
        dimension = sheet.column_dimensions[letter]
        dimension.width = column.width
        if column.text_format:
            # A column style, so that every cell typed into later is text as well.
            dimension.number_format = TEXT_FORMAT

        cells = f"{letter}2:{letter}{_LAST_ROW}"
        choices = _choices(column, codes)
        if choices is not None:
            list_letter = column_letter(list_column)
            list_column += 1
            lists.cell(row=1, column=list_column, value=column.label)
            for offset, choice in enumerate(choices, start=2):
                lists.cell(row=offset, column=list_column, value=choice)
            source = f"{quote_sheetname(CODES_SHEET)}!${list_letter}$2:${list_letter}${len(choices) + 1}"
            # 户籍所在地 lists Guizhou only; a migrant child's code from elsewhere is valid, so only warn.
            strict = column.code_table != "area"
            _dropdown(sheet, source, cells, f"请从下拉列表选择{column.label}", strict=strict)
        elif column.kind is CellKind.flag:
            _dropdown(sheet, '"是,否"', cells, f"{column.label}请选择“是”或“否”")
        elif column.kind is CellKind.grade:
            _dropdown(sheet, f'"{_GRADES}"', cells, "年级请选择 1–9（初一为 7）")

    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{column_letter(len(COLUMNS) - 1)}1"
    _write_guide(guide, codes)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _dropdown(sheet: Worksheet, formula: str, cells: str, message: str, *, strict: bool = True) -> None:
    validation = DataValidation(type="list", formula1=formula, allow_blank=True, showDropDown=False,
                                showErrorMessage=True, errorTitle="填写的值不在列表中", error=message,
                                errorStyle="stop" if strict else "warning")
    validation.add(cells)
    sheet.add_data_validation(validation)


def _write_guide(guide: Worksheet, codes: CodeTables) -> None:
    guide.column_dimensions["A"].width = 18
    guide.column_dimensions["B"].width = 8
    guide.column_dimensions["C"].width = 60
    guide.column_dimensions["D"].width = 60
    guide.append(["填表说明"])
    guide["A1"].font = HEADER_FONT
    for number, note in enumerate(_GENERAL_NOTES, start=1):
        guide.append([f"{number}.", None, note])
    guide.append([])
    guide.append(["列名", "必填", "填写说明", "可填的值（代码 名称）"])
    for cell in guide[guide.max_row]:
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
    for column in COLUMNS:
        choices = _choices(column, codes)
        allowed = "；".join(choices) if choices is not None else ("是；否" if column.kind is CellKind.flag else None)
        guide.append([column.label, "是" if column.required else "", column.hint or None, allowed])
        for cell in guide[guide.max_row]:
            cell.alignment = WRAP
