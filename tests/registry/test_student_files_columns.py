import pytest

from registry.rules.student import CODE_FIELDS, FIELD_LABELS, REQUIRED_FIELDS
from registry.student_files.columns import COLUMNS, column_letter, is_report_header, match_header


def test_every_student_field_has_one_column() -> None:
    assert sorted(c.field for c in COLUMNS) == sorted(FIELD_LABELS)


def test_required_and_code_columns_follow_the_rules() -> None:
    assert {c.field for c in COLUMNS if c.required} == set(REQUIRED_FIELDS)
    assert {c.field for c in COLUMNS if c.code_table is not None} == {*CODE_FIELDS, "hukou_area"}
    assert all(c.header == c.label + "*" for c in COLUMNS if c.required)


def test_only_measures_are_not_text_formatted() -> None:
    assert {c.field for c in COLUMNS if not c.text_format} == {"height_cm", "weight_kg"}


@pytest.mark.parametrize("header", [
    "身份证件号", "身份证件号*", " 身份证件号 ", "身份证件号（必填）", "身份证件号(必填)", "*身份证件号",
    "身份证件号＊", "身份 证件号", "id_number", "ID_NUMBER", "身份证号码", "公民身份号码",
])
def test_header_matching_is_tolerant(header: str) -> None:
    assert match_header(header) == "id_number"


@pytest.mark.parametrize(("header", "field"), [
    ("身高（厘米）", "height_cm"), ("体重(kg)", "weight_kg"), ("入学年月（YYYY-MM）", "enrolled_month"),
    ("学籍辅号", "student_number_aux"), ("学籍主号", "student_number"), ("享受一补", "boarding_allowance"),
])
def test_header_with_a_unit_or_note_matches(header: str, field: str) -> None:
    assert match_header(header) == field


@pytest.mark.parametrize("header", ["序号", "备注", "", None, 3, "身份证件号码号"])
def test_unknown_headers_match_nothing(header: object) -> None:
    assert match_header(header) is None


def test_report_columns_are_recognised_for_reupload() -> None:
    assert all(is_report_header(h) for h in ("原行号", "错误", " 提示 "))
    assert not is_report_header("姓名")


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == ["A", "Z", "AA", "AB", "ZZ", "AAA"]
