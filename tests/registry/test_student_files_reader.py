import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from registry.code_tables import load_code_tables
from registry.rules.id_number import check_digit
from registry.student_files import COLUMNS, ReadResult, check_rows, read_rows
from registry.student_files.reader import FILE, HEADER
from tests.factories import student_data

CODES = load_code_tables()
TODAY = date(2025, 10, 1)
HEADERS = [c.header for c in COLUMNS]
X_ID = "11010519491231002X"  # valid, ends in X (DESIGN)


def row_of(student: dict[str, Any]) -> list[Any]:
    return [student.get(c.field) for c in COLUMNS]


def xlsx(rows: list[list[Any]], setup: Callable[[Worksheet], None] | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)
    for row in rows:
        sheet.append(row)
    if setup is not None:
        setup(sheet)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_cached_values(data: bytes, cached: dict[str, str]) -> bytes:
    """openpyxl writes formulas without a result; Excel saves one. Put the given results in."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                for ref, value in cached.items():
                    content, count = re.subn(
                        rf'<c r="{ref}"><f>(.*?)</f><v></v></c>'.encode(),
                        rf'<c r="{ref}" t="str"><f>\1</f><v>{value}</v></c>'.encode(), content)
                    assert count == 1, ref
            target.writestr(item, content)
    return out.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str) -> bytes:
    text = "\r\n".join(",".join("" if v is None else str(v) for v in row) for row in rows) + "\r\n"
    return text.encode(encoding)


def only_row(result: ReadResult) -> dict[str, Any]:
    assert not result.refused, result.problems
    assert len(result.rows) == 1, result.rows
    assert result.rows[0].problems == ()
    return result.rows[0].data


def messages(result: ReadResult) -> list[str]:
    return [p.message for p in result.problems]


# --- file types ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected"), [
    (b"", "文件是空的"),
    (b" \r\n\t", "文件是空的"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "旧版 Excel 97-2003 工作簿（.xls）"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64 + "EncryptedPackage".encode("utf-16-le"), "设置了打开密码"),
    ("<html xmlns:o='urn:schemas-microsoft-com:office:office'><body><table><tr><td>姓名</td></tr></table>".encode(),
     "网页（HTML）文件"),
    ("\ufeff<!DOCTYPE html><html><table></table></html>".encode(), "网页（HTML）文件"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "这是PDF 文件"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG 图片"),
    (b"PK\x03\x04broken", "文件已损坏"),
    (b"\x00\x01\x02\x03binary", "二进制数据"),
    (b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">', "XML 电子表格 2003"),
])
def test_files_that_are_no_spreadsheet_are_refused_precisely(data: bytes, expected: str) -> None:
    result = read_rows(data, "学生.xls", codes=CODES)
    assert result.refused and result.rows == []
    [problem] = result.problems
    assert problem.field == FILE and problem.code == "file_type"
    assert expected in problem.message and "学生.xls" in problem.message


def test_word_document_and_plain_zip_are_refused() -> None:
    def zipped(name: str) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(name, "x")
        return out.getvalue()

    assert "Word 文档" in messages(read_rows(zipped("word/document.xml"), "a.xlsx", codes=CODES))[0]
    assert "ZIP 压缩包" in messages(read_rows(zipped("readme.txt"), "a.xlsx", codes=CODES))[0]


def test_content_decides_the_type_not_the_name() -> None:
    data = csv_bytes([HEADERS, row_of(student_data())], "utf-8")
    assert only_row(read_rows(data, "名单.xlsx", codes=CODES))["name"] == "张小明"


def test_sha256_of_the_upload_is_kept() -> None:
    data = xlsx([HEADERS, row_of(student_data())])
    assert read_rows(data, "a.xlsx", codes=CODES).sha256 == hashlib.sha256(data).hexdigest()
    assert read_rows(b"", "a.xlsx", codes=CODES).sha256 == hashlib.sha256(b"").hexdigest()


# --- CSV encodings ------------------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "reported"), [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("gb18030", "gb18030")])
def test_csv_in_utf8_with_or_without_bom_and_gb18030(encoding: str, reported: str) -> None:
    # 𬍤 needs four bytes in GB18030 and is outside GBK: a GBK decoder would fail on it.
    students = [student_data(seq=101, name="龙𬍤"), student_data(seq=202, name="吴秀英", ethnicity="侗族")]
    result = read_rows(csv_bytes([HEADERS, *map(row_of, students)], encoding), "名单.csv", codes=CODES)
    assert result.encoding == reported and not result.refused
    assert [r.data["name"] for r in result.rows] == ["龙𬍤", "吴秀英"]
    assert result.rows[1].data["ethnicity"] == "12"
    assert [r.row_number for r in result.rows] == [2, 3]
    assert all(not r.errors for r in check_rows(result.rows, today=TODAY, codes=CODES))


def test_tab_separated_unicode_text_from_excel_is_read() -> None:
    text = "\r\n".join("\t".join("" if v is None else str(v) for v in row) for row in [HEADERS, row_of(student_data())])
    assert only_row(read_rows(text.encode("utf-16"), "名单.txt", codes=CODES))["name"] == "张小明"


def test_csv_id_in_scientific_notation_is_a_row_error() -> None:
    data = csv_bytes([HEADERS, row_of(student_data(id_number="5.20102E+17"))], "utf-8")
    [row] = read_rows(data, "a.csv", codes=CODES).rows
    [problem] = row.problems
    assert problem.field == "id_number" and problem.code == "stored_as_number"
    assert "科学计数法" in problem.message and "文本" in problem.message


# --- header -------------------------------------------------------------------------------------

def test_title_rows_above_the_header_are_skipped() -> None:
    data = xlsx([["某某县某某小学 2025 年秋季学期学生名单"], ["填表人：李老师"], HEADERS, row_of(student_data())])
    result = read_rows(data, "a.xlsx", codes=CODES)
    assert only_row(result)["name"] == "张小明"
    assert result.rows[0].row_number == 4


def test_missing_required_columns_are_named() -> None:
    headers = ["姓名", "性别", "出生日期", "身份证号码", "班级", "备注"]
    data = xlsx([headers, ["张小明", "男", "2017-03-14", "520102201703141012", "三（1）班", ""]])
    result = read_rows(data, "a.xlsx", codes=CODES)
    assert result.refused
    missing = [p for p in result.problems if p.code == "missing_column"]
    assert {p.field for p in missing} == {"id_type", "ethnicity", "school_code", "grade", "enrolled_month",
                                          "boarding_mode"}
    assert "表头：缺少必填列“民族”（表头在第 1 行）" in [p.message for p in missing]
    [unknown] = [p for p in result.problems if p.code == "unknown_column"]
    assert unknown.severity == "warning" and "“备注”" in unknown.message and "F 列" in unknown.message
    assert result.unknown_columns == ["备注"]


def test_no_header_row_at_all_is_refused() -> None:
    data = xlsx([["学生", "名单"], ["张小明", "男"]])
    result = read_rows(data, "a.xlsx", codes=CODES)
    assert result.refused and result.rows == []
    [problem] = result.problems
    assert problem.field == HEADER and problem.code == "no_header" and "姓名、性别" in problem.message


def test_a_column_given_twice_is_refused() -> None:
    data = xlsx([[*HEADERS, "身份证号"], row_of(student_data())])
    result = read_rows(data, "a.xlsx", codes=CODES)
    [problem] = [p for p in result.problems if p.code == "duplicate_column"]
    assert problem.severity == "error" and "“身份证件号”出现了两次（F 列和 AC 列）" in problem.message


def test_columns_in_any_order_and_optional_ones_left_out() -> None:
    student = student_data()
    fields = ["id_number", "name", "grade", "class_name", "sex", "birth_date", "id_type", "ethnicity",
              "school_code", "enrolled_month", "boarding_mode"]
    labels = {c.field: c.label for c in COLUMNS}
    data = xlsx([[labels[f] for f in fields], [student[f] for f in fields]])
    result = read_rows(data, "a.xlsx", codes=CODES)
    assert result.columns == fields
    assert only_row(result)["id_number"] == student["id_number"]


def test_the_sheet_with_the_header_is_used_even_if_not_first() -> None:
    def setup(sheet: Worksheet) -> None:
        sheet.title = "说明"
        data_sheet = sheet.parent.create_sheet("名单")
        data_sheet.append(HEADERS)
        data_sheet.append(row_of(student_data()))

    result = read_rows(xlsx([["请在第二个工作表填写"]], setup), "a.xlsx", codes=CODES)
    assert result.sheet_name == "名单" and only_row(result)["name"] == "张小明"


# --- rows and cells -----------------------------------------------------------------------------

def test_empty_rows_are_skipped_and_row_numbers_kept() -> None:
    data = xlsx([HEADERS, row_of(student_data(seq=101)), [], [None, "  "], row_of(student_data(seq=202)), [""] * 5])
    result = read_rows(data, "a.xlsx", codes=CODES)
    assert [r.row_number for r in result.rows] == [2, 5]


def test_excel_date_cells_and_serials_become_iso_dates() -> None:
    students = [
        student_data(seq=101, birth_date=datetime(2017, 3, 14), enrolled_month=date(2023, 9, 1)),
        student_data(seq=103, birth_date=42808, enrolled_month=45170),  # serials, General format
        student_data(seq=105, birth_date=20170314, enrolled_month=202309),  # digits typed as numbers
        student_data(seq=107, birth_date="2017年3月14日", enrolled_month=2023.09),
    ]
    result = read_rows(xlsx([HEADERS, *map(row_of, students)]), "a.xlsx", codes=CODES)
    reports = check_rows(result.rows, today=TODAY, codes=CODES)
    assert [(r.data["birth_date"], r.data["enrolled_month"]) for r in reports] == [("2017-03-14", "2023-09")] * 4
    assert all(not r.errors for r in reports)


def test_text_dates_are_left_to_the_rules() -> None:
    for typed in ("2017/3/14", "2017-03-14", "20170314", "2017年3月14日", "2017.3.14"):
        data = xlsx([HEADERS, row_of(student_data(birth_date=typed))])
        [report] = check_rows(read_rows(data, "a.xlsx", codes=CODES).rows, today=TODAY, codes=CODES)
        assert report.data["birth_date"] == "2017-03-14" and not report.errors, typed


def test_month_typed_as_the_number_2023_1_is_ambiguous() -> None:
    data = xlsx([HEADERS, row_of(student_data(enrolled_month=2023.1))])
    [row] = read_rows(data, "a.xlsx", codes=CODES).rows
    [problem] = row.problems
    assert problem.field == "enrolled_month" and problem.code == "ambiguous_month"
    assert "1 月还是 10 月" in problem.message


@pytest.mark.parametrize(("number", "shown"), [
    (11010519491231002, "11010519491231000"),  # the X lost, and Excel keeps 15 digits of the 17
    (12345678, "12345678"),  # a Hong Kong document number that began with 0
    (5.20102201703141e17, "520102201703141000"),  # typed as 18 digits: Excel keeps 15
])
def test_id_number_stored_as_a_number_is_an_error_telling_to_format_as_text(number: float, shown: str) -> None:
    data = xlsx([HEADERS, row_of(student_data(id_number=number, student_number=number))])
    result = read_rows(data, "a.xlsx", codes=CODES)
    [row] = result.rows
    assert row.data["id_number"] == shown
    assert {p.field for p in row.problems} == {"id_number", "student_number"}
    problem = next(p for p in row.problems if p.field == "id_number")
    assert problem.code == "stored_as_number" and problem.severity == "error"
    assert problem.message.startswith(f"身份证件号：单元格是数字格式（读到 {shown}）")
    assert "“文本”格式" in problem.message
    # The rules add nothing about the same cell: one precise message, not three.
    [report] = check_rows(result.rows, today=TODAY, codes=CODES)
    assert [e.code for e in report.errors if e.field == "id_number"] == ["stored_as_number"]


def test_phone_as_number_is_kept_for_mobiles_and_refused_for_landlines() -> None:
    rows = [row_of(student_data(seq=101, guardian_phone=13800001234)),
            row_of(student_data(seq=103, guardian_phone=8518123456))]
    result = read_rows(xlsx([HEADERS, *rows]), "a.xlsx", codes=CODES)
    assert result.rows[0].data["guardian_phone"] == "13800001234" and result.rows[0].problems == ()
    [problem] = result.rows[1].problems
    assert problem.field == "guardian_phone" and "区号开头的 0" in problem.message


def test_id_with_x_as_text_is_kept() -> None:
    data = xlsx([HEADERS, row_of(student_data(id_number=X_ID, sex="2", birth_date="1949-12-31"))])
    assert only_row(read_rows(data, "a.xlsx", codes=CODES))["id_number"] == X_ID


def test_formulas_with_cached_values_are_read() -> None:
    student = student_data()
    row = row_of(student)
    letters = {c.field: i for i, c in enumerate(COLUMNS)}
    row[letters["ethnicity"]] = '=VLOOKUP("苗族",代码!A:B,2,FALSE)'
    row[letters["name"]] = '=TRIM(" 张小明 ")'
    data = with_cached_values(xlsx([HEADERS, row]), {"G2": "06 苗族", "A2": "张小明"})
    result = read_rows(data, "a.xlsx", codes=CODES)
    data_row = only_row(result)
    assert (data_row["ethnicity"], data_row["name"]) == ("06", "张小明")


def test_formula_without_cached_value_and_error_values_are_row_errors() -> None:
    row = row_of(student_data())
    row[6] = '=VLOOKUP("苗族",代码!A:B,2,FALSE)'  # ethnicity, never calculated

    def setup(sheet: Worksheet) -> None:
        sheet["A3"] = "=1/0"
        sheet["A3"].data_type = "f"
        sheet["K3"] = "#N/A"
        sheet["K3"].data_type = "e"  # grade: a failed lookup's cached result

    second = row_of(student_data(seq=202))
    result = read_rows(xlsx([HEADERS, row, second], setup), "a.xlsx", codes=CODES)
    first, other = result.rows
    [problem] = first.problems
    assert problem.field == "ethnicity" and problem.code == "unreadable_cell"
    assert "没有保存计算结果" in problem.message
    assert {p.field: p.code for p in other.problems} == {"name": "unreadable_cell", "grade": "unreadable_cell"}
    assert any("错误值 #N/A" in p.message for p in other.problems)
    reports = check_rows(result.rows, today=TODAY, codes=CODES)
    # No "required" on top of the unreadable cell.
    assert [e.code for e in reports[0].errors] == ["unreadable_cell"]


@pytest.mark.parametrize(("typed", "code"), [
    ("06", "06"), ("6", "06"), (6, "06"), ("06 苗族", "06"), ("06苗族", "06"), ("06-苗族", "06"), ("苗族", "06"),
    ("苗", "苗"), ("毛难族", "36"), ("36 毛难族", "36"), ("崩龙族", "46"), ("０６", "06"),
])
def test_ethnicity_accepts_codes_labels_and_aliases(typed: Any, code: str) -> None:
    data = xlsx([HEADERS, row_of(student_data(ethnicity=typed))])
    assert only_row(read_rows(data, "a.xlsx", codes=CODES))["ethnicity"] == code


def test_code_and_label_that_disagree_are_an_error() -> None:
    data = xlsx([HEADERS, row_of(student_data(ethnicity="06 汉族"))])
    [row] = read_rows(data, "a.xlsx", codes=CODES).rows
    [problem] = row.problems
    assert problem.code == "code_label_mismatch" and "代码 06 与名称“汉族”（代码 01）不一致" in problem.message


@pytest.mark.parametrize(("field", "typed", "code"), [
    ("sex", "男", "1"), ("sex", "2 女", "2"), ("sex", "女性", "2"), ("sex", 1, "1"),
    ("id_type", "身份证", "1"), ("id_type", "a", "A"), ("boarding_mode", "寄宿", "2"), ("boarding_mode", "住校", "2"),
    ("enrolment_mode", "11 就近入学", "11"), ("left_behind", "双亲留守儿童", "2"), ("health", "6", "6"),
])
def test_other_code_columns_resolve(field: str, typed: Any, code: str) -> None:
    data = xlsx([HEADERS, row_of(student_data(**{field: typed}))])
    assert only_row(read_rows(data, "a.xlsx", codes=CODES))[field] == code


@pytest.mark.parametrize(("typed", "value"), [
    ("是", True), ("否", False), ("Y", True), ("n", False), (1, True), (0, False), ("true", True), ("FALSE", False),
    (True, True), ("1 是", True), ("", None), ("也许", "也许"),
])
def test_yes_no_columns(typed: Any, value: Any) -> None:
    data = xlsx([HEADERS, row_of(student_data(migrant_child=typed))])
    assert only_row(read_rows(data, "a.xlsx", codes=CODES)).get("migrant_child") == value


@pytest.mark.parametrize(("typed", "grade"), [(3, 3), ("3", 3), ("三年级", 3), ("3年级", 3), ("初一", 7), ("初三", 9)])
def test_grade_in_words(typed: Any, grade: Any) -> None:
    data = xlsx([HEADERS, row_of(student_data(grade=typed))])
    assert only_row(read_rows(data, "a.xlsx", codes=CODES))["grade"] == grade


def test_numbers_in_text_columns_keep_their_digits() -> None:
    student = {**student_data(), "school_code": 2152019901, "class_name": 1, "height_cm": "128cm",
               "weight_kg": "26.5 公斤", "hukou_area": "520102 南明区"}
    row = only_row(read_rows(xlsx([HEADERS, row_of(student)]), "a.xlsx", codes=CODES))
    assert (row["school_code"], row["class_name"]) == ("2152019901", "1")
    assert (row["height_cm"], row["weight_kg"], row["hukou_area"]) == (128.0, 26.5, "520102")


def test_the_totals_row_of_an_export_is_not_a_student() -> None:
    data = xlsx([HEADERS, row_of(student_data()), ["合计：1 人"]])
    assert only_row(read_rows(data, "a.xlsx", codes=CODES))["name"] == "张小明"


def test_too_many_rows_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("registry.student_files.reader.MAX_ROWS", 2)
    students = [row_of(student_data(seq=s)) for s in (101, 103, 105)]
    result = read_rows(csv_bytes([HEADERS, *students], "utf-8"), "a.csv", codes=CODES)
    assert result.refused and result.rows == []
    assert "共 3 行学生，超过一次最多 2 行" in messages(result)[0]


def test_gb18030_csv_id_with_check_digit_survives() -> None:
    first17 = "52262720120304001"
    number = first17 + check_digit(first17)
    student = student_data(id_number=number, birth_date="2012-03-04", sex="1", grade=6, enrolled_month="2018-09")
    row = only_row(read_rows(csv_bytes([HEADERS, row_of(student)], "gb18030"), "a.csv", codes=CODES))
    assert row["id_number"] == number
