from datetime import date, datetime
from typing import Any

from registry.code_tables import load_code_tables
from registry.rules.findings import error
from registry.student_files import SheetRow, check_rows
from tests.factories import make_id_number, student_data

CODES = load_code_tables()
TODAY = date(2025, 10, 1)


def rows(*students: dict[str, Any], first: int = 2) -> list[SheetRow]:
    return [SheetRow(first + i, student) for i, student in enumerate(students)]


def test_valid_rows_have_no_findings_and_keep_their_row_numbers() -> None:
    reports = check_rows(rows(student_data(seq=101, name="张小明"), student_data(seq=202, name="王小红"), first=5),
                         today=TODAY, codes=CODES)
    assert [(r.row_number, r.ok, r.errors, r.warnings) for r in reports] == [(5, True, [], []), (6, True, [], [])]


def test_row_data_is_normalised() -> None:
    [report] = check_rows(rows(student_data(name=" 张小明 ", birth_date="2017/3/14", grade="3")),
                          today=datetime(2025, 10, 1, 8, 0), codes=CODES)
    assert (report.data["name"], report.data["birth_date"], report.data["grade"]) == ("张小明", "2017-03-14", 3)


def test_rule_errors_and_warnings_are_separated() -> None:
    [report] = check_rows(rows(student_data(sex="2", height_cm=12.8)), today=TODAY, codes=CODES)
    assert [(f.field, f.code) for f in report.errors] == [("sex", "id_mismatch")]
    assert [(f.field, f.code) for f in report.warnings] == [("height_cm", "implausible")]
    assert not report.ok


def test_same_id_twice_is_an_error_on_both_rows_naming_the_other() -> None:
    student = student_data(seq=101)
    reports = check_rows(rows(student, student_data(seq=202, name="王小红"), dict(student, name="张晓明"), first=2),
                         today=TODAY, codes=CODES)
    first, middle, last = reports
    assert [e.message for e in first.errors] == [
        "身份证件号：与第 4 行重复（兄弟姐妹共用监护人的身份证件号时，请填写不同的学籍辅号）"]
    assert [e.message for e in last.errors][0].startswith("身份证件号：与第 2 行重复")
    assert middle.ok


def test_id_written_differently_is_still_the_same_id() -> None:
    number = make_id_number(area="110105", birth=date(2017, 3, 14), seq=1)
    reports = check_rows(rows(student_data(id_number=number), student_data(id_number=" " + number.lower() + " ")),
                         today=TODAY, codes=CODES)
    assert all("duplicate_in_file" in [e.code for e in r.errors] for r in reports)


def test_siblings_sharing_a_guardian_id_are_allowed_when_the_aux_number_differs() -> None:
    guardian = student_data(seq=101)["id_number"]
    first = student_data(seq=101, name="张大妹", student_number_aux="1")
    second = student_data(seq=101, name="张二妹", student_number_aux="2", id_number=guardian)
    third = student_data(seq=101, name="张三妹", student_number_aux="2", id_number=guardian)
    reports = check_rows(rows(first, second, third), today=TODAY, codes=CODES)
    assert "duplicate_in_file" not in [e.code for e in reports[0].errors]
    assert "与第 4 行重复" in reports[1].errors[0].message and "与第 3 行重复" in reports[2].errors[0].message


def test_many_duplicates_are_counted_not_all_listed() -> None:
    student = student_data()
    reports = check_rows(rows(*[student] * 8), today=TODAY, codes=CODES)
    assert reports[0].errors[0].message.startswith("身份证件号：与第 3、4、5、6、7 行等 7 行重复")


def test_same_national_student_number_twice_is_an_error() -> None:
    a = student_data(seq=101, name="张小明", national_student_number="G" + student_data(seq=101)["id_number"])
    b = student_data(seq=103, name="李小明", national_student_number=a["national_student_number"])
    reports = check_rows(rows(a, b), today=TODAY, codes=CODES)
    assert ("national_student_number", "duplicate_in_file") in [(e.field, e.code) for e in reports[1].errors]


def test_same_person_with_another_id_is_a_warning() -> None:
    reports = check_rows(rows(student_data(seq=101), student_data(seq=103)), today=TODAY, codes=CODES)
    assert [w.message for w in reports[0].warnings] == [
        "姓名：与第 3 行的姓名、性别、出生日期相同而身份证件号不同，请核对是否为同一学生"]
    assert reports[0].ok and reports[1].ok


def test_reader_problems_come_first_and_silence_rules_on_the_same_field() -> None:
    problem = error("id_number", "身份证件号", "stored_as_number", "单元格是数字格式")
    row = SheetRow(7, student_data(id_number="11010519491231000"), (problem,))
    twin = SheetRow(8, student_data(id_number="11010519491231000"))
    first, second = check_rows([row, twin], today=TODAY, codes=CODES)
    assert first.errors == [problem]  # no length error, no duplicate of a number already known broken
    assert {e.code for e in second.errors} == {"length"}
