import io
from datetime import date, datetime

from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from registry.code_tables import load_code_tables
from registry.student_files import COLUMNS, build_template, check_rows, read_rows
from registry.student_files.columns import column_letter
from registry.student_files.template import CODES_SHEET, DATA_SHEET, GUIDE_SHEET
from tests.factories import student_data

CODES = load_code_tables()
TODAY = date(2025, 10, 1)
LETTER = {c.field: column_letter(i) for i, c in enumerate(COLUMNS)}


def _template() -> tuple[Workbook, Worksheet]:
    book = load_workbook(io.BytesIO(build_template()))
    sheet = book[DATA_SHEET]
    assert isinstance(sheet, Worksheet)
    return book, sheet


def test_template_has_the_chinese_headers_with_required_marked() -> None:
    _, sheet = _template()
    headers = [cell.value for cell in sheet[1]]
    assert headers == [c.header for c in COLUMNS]
    assert "姓名*" in headers and "曾用名" in headers and "身份证件号*" in headers
    assert sheet.freeze_panes == "A2"


def test_id_and_phone_columns_are_text_formatted() -> None:
    _, sheet = _template()
    for field in ("id_number", "guardian_phone", "student_number", "national_student_number", "enrolled_month"):
        assert sheet.column_dimensions[LETTER[field]].number_format == "@", field
    assert sheet.column_dimensions[LETTER["id_number"]].width >= 20


def test_every_code_column_has_a_dropdown_from_the_hidden_code_sheet() -> None:
    book, sheet = _template()
    lists = book[CODES_SHEET]
    assert lists.sheet_state == "hidden"
    by_column = {str(v.sqref).split(":")[0].rstrip("0123456789"): v for v in sheet.data_validations.dataValidation}
    for field in ("sex", "id_type", "ethnicity", "enrolment_mode", "boarding_mode", "health", "left_behind"):
        validation = by_column[LETTER[field]]
        assert validation.type == "list"
        assert validation.formula1.startswith("'代码表'!$")
        # The referenced range holds exactly the table's rows, in the "06 苗族" form.
        list_letter = validation.formula1.split("!$")[1].split("$")[0]
        values = [c.value for c in lists[list_letter][1:] if c.value is not None]
        assert values == [f"{i.code} {i.label}" for i in CODES.table(field)]
    ethnicity = by_column[LETTER["ethnicity"]]
    assert "06 苗族" in [c.value for c in lists[ethnicity.formula1.split("!$")[1].split("$")[0]]]
    assert by_column[LETTER["migrant_child"]].formula1 == '"是,否"'
    assert LETTER["name"] not in by_column


def test_guide_sheet_explains_every_column_and_lists_the_codes() -> None:
    book, _ = _template()
    guide = book[GUIDE_SHEET]
    text = "\n".join(str(c.value) for row in guide.iter_rows() for c in row if c.value is not None)
    for column in COLUMNS:
        assert column.label in text
    assert "06 苗族" in text and "98 外国血统中国籍人士" in text and "文本" in text


def test_filled_template_reads_and_checks_without_errors() -> None:
    book, sheet = _template()
    students = [student_data(seq=101, name="张小明"), student_data(seq=202, name="王小红"),
                student_data(seq=303, name="杨 𬍤", grade="三年级", ethnicity="苗族")]
    for row, student in enumerate(students, start=2):
        # What a registrar produces: dropdown picks, typed text, Excel date cells.
        values = {**student, "sex": "1 男" if student["sex"] == "1" else "2 女", "id_type": "1 居民身份证",
                  "boarding_mode": "1 走读", "birth_date": datetime.fromisoformat(student["birth_date"]),
                  "migrant_child": "否", "height_cm": 128.5}
        if student["ethnicity"] == "06":
            values["ethnicity"] = "06 苗族"
        for index, column in enumerate(COLUMNS, start=1):
            sheet.cell(row=row, column=index, value=values.get(column.field))
    out = io.BytesIO()
    book.save(out)

    result = read_rows(out.getvalue(), "学生信息.xlsx", codes=CODES)
    assert result.problems == [] and result.sheet_name == DATA_SHEET
    assert [r.row_number for r in result.rows] == [2, 3, 4]
    reports = check_rows(result.rows, today=TODAY, codes=CODES)
    assert [(r.errors, r.warnings) for r in reports] == [([], [])] * 3
    third = reports[2].data
    assert (third["ethnicity"], third["grade"], third["sex"], third["birth_date"]) == ("06", 3, "1", "2017-03-14")
    assert third["migrant_child"] is False and third["height_cm"] == 128.5


def test_the_empty_template_uploaded_by_mistake_is_refused() -> None:
    result = read_rows(build_template(), "template.xlsx", codes=CODES)
    assert result.refused and result.rows == []
    assert [p.code for p in result.problems] == ["no_rows"]
    assert result.columns == [c.field for c in COLUMNS]
