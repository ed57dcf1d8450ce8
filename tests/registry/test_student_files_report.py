import io
from datetime import date
from typing import Any

from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from registry.access import mask_id_number
from registry.code_tables import load_code_tables
from registry.student_files import COLUMNS, build_export, build_report, check_rows, read_rows
from registry.student_files.report import EXPORT_SHEET, REPORT_SHEET, SUMMARY_SHEET
from tests.factories import student_data

CODES = load_code_tables()
TODAY = date(2025, 10, 1)
HEADERS = [c.header for c in COLUMNS]


def xlsx(rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_of(data: bytes, name: str) -> Worksheet:
    sheet = load_workbook(io.BytesIO(data))[name]
    assert isinstance(sheet, Worksheet)
    return sheet


def upload() -> tuple[bytes, list[str]]:
    good = student_data(seq=101, name="张小明")
    wrong_sex = student_data(seq=202, name="王小红", sex="1")
    odd_height = student_data(seq=303, name="杨小兰", sex="1", height_cm=12.8)
    data = xlsx([["某小学学生名单"], HEADERS, *[[s.get(c.field) for c in COLUMNS] for s in (good, wrong_sex, odd_height)]])
    result = read_rows(data, "a.xlsx", codes=CODES)
    reports = check_rows(result.rows, today=TODAY, codes=CODES)
    return build_report(reports, result.columns, codes=CODES, problems=result.problems), result.columns


def test_report_has_error_and_warning_columns_on_the_right_rows() -> None:
    report, columns = upload()
    sheet = sheet_of(report, REPORT_SHEET)
    header = [c.value for c in sheet[1]]
    assert header == ["原行号", *HEADERS, "错误", "提示"]
    rows = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    assert sorted(rows) == [3, 4, 5]
    errors, warnings = len(header) - 2, len(header) - 1
    assert rows[3][errors].value is None and rows[3][warnings].value is None
    assert rows[4][errors].value == "性别：与身份证件号不符（身份证件号显示为女）"
    assert "身高" in rows[5][warnings].value and rows[5][errors].value is None
    assert rows[4][1].fill.fgColor.rgb.endswith("FFC7CE") and rows[4][errors].fill.fgColor.rgb.endswith("FFC7CE")
    assert rows[3][1].fill.fill_type is None
    assert rows[5][1].fill.fgColor.rgb.endswith("FFEB9C")


def test_report_shows_codes_with_labels_and_ids_as_text() -> None:
    report, _ = upload()
    sheet = sheet_of(report, REPORT_SHEET)
    header = [c.value for c in sheet[1]]
    row = [c.value for c in sheet[2]]
    assert row[header.index("民族*")] == "06 苗族" and row[header.index("性别*")] == "1 男"
    assert row[header.index("身份证件号*")] == student_data(seq=101)["id_number"]
    summary = [[c.value for c in r] for r in sheet_of(report, SUMMARY_SHEET).iter_rows()]
    assert ["学生行数", 3] in summary and ["有错误的行（红色）", 1] in summary


def test_a_fixed_report_can_be_uploaded_again() -> None:
    report, columns = upload()
    result = read_rows(report, "导入结果.xlsx", codes=CODES)
    assert result.problems == [] and result.columns == columns
    assert [r.row_number for r in result.rows] == [2, 3, 4]
    assert [r.data["ethnicity"] for r in result.rows] == ["06"] * 3


def test_text_starting_with_equals_is_never_a_formula() -> None:
    result = read_rows(xlsx([HEADERS, [s for s in [student_data().get(c.field) for c in COLUMNS]]]), "a.xlsx", codes=CODES)
    [report] = check_rows(result.rows, today=TODAY, codes=CODES)
    report.data["address"] = '=HYPERLINK("http://example.invalid","点我")'
    report.data["guardian_name"] = "张\x07大山"  # a control character from a pasted CSV
    data = build_report([report], result.columns, codes=CODES)
    sheet = sheet_of(data, REPORT_SHEET)
    header = [c.value for c in sheet[1]]
    cell = sheet[2][header.index("现住址")]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    assert sheet[2][header.index("监护人姓名")].value == "张大山"


def test_export_masks_ids_labels_codes_and_counts() -> None:
    students = [student_data(seq=101, name="张小明", migrant_child=True, boarding_allowance=False,
                             national_student_number="G" + student_data(seq=101)["id_number"],
                             student_number=student_data(seq=101)["id_number"]),
                student_data(seq=202, name="王小红", id_type="A", id_number="E12345678", birth_date=date(2017, 3, 14))]
    sheet = sheet_of(build_export(students, mask_id=True, codes=CODES), EXPORT_SHEET)
    header = [c.value for c in sheet[1]]
    assert header == [c.label for c in COLUMNS]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    first, second, totals = values
    number = student_data(seq=101)["id_number"]
    masked = number[:6] + "********" + number[-4:]
    assert first[header.index("身份证件号")] == masked
    assert first[header.index("学籍号")] == masked
    assert first[header.index("全国学籍号")] == "G" + masked
    assert number not in str(values)
    assert second[header.index("身份证件号")] == "*****5678"
    assert second[header.index("出生日期")] == "2017-03-14"
    assert first[header.index("民族")] == "06 苗族" and second[header.index("身份证件类型")] == "A 护照"
    assert (first[header.index("随迁子女")], first[header.index("享受一补")]) == ("是", "否")
    assert totals[0] == "合计：2 人"


def test_export_unmasked_for_roles_that_may_see_ids() -> None:
    student = student_data()
    sheet = sheet_of(build_export([student], mask_id=False, codes=CODES), EXPORT_SHEET)
    header = [c.value for c in sheet[1]]
    assert sheet[2][header.index("身份证件号")].value == student["id_number"]


def test_export_reads_back_as_an_upload() -> None:
    students = [student_data(seq=101, name="张小明"), student_data(seq=202, name="王小红")]
    result = read_rows(build_export(students, mask_id=False, codes=CODES), "export.xlsx", codes=CODES)
    assert [r.row_number for r in result.rows] == [2, 3]
    reports = check_rows(result.rows, today=TODAY, codes=CODES)
    assert [r.errors for r in reports] == [[], []]


def test_mask_id_number() -> None:
    assert mask_id_number("11010519491231002X") == "110105********002X"
    assert mask_id_number("G11010519491231002X") == "G110105********002X"
    assert mask_id_number("110105491231002") == "110105*****1002"
    assert mask_id_number("E12345678") == "*****5678"
    assert mask_id_number("123") == "***"
    # One mask for the API, the pages and the files alike (it was two, and a 9-character number showed whole).
    assert mask_id_number(None) is None and mask_id_number("") == ""
