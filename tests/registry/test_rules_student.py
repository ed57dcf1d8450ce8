from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.code_tables import CodeTables, load_code_tables
from registry.rules.findings import Finding, errors, warnings
from registry.rules.id_number import check_digit
from registry.rules.student import FIELD_LABELS, MAX_LENGTHS, REQUIRED_FIELDS, check_student, normalise_student

TODAY = date(2024, 10, 8)
CODES = load_code_tables()
# A boy from 天柱县, Guizhou, born 2012-03-04: in grade 6 in the 2024 school year.
ID = "52262720120304001" + check_digit("52262720120304001")
GIRL_ID = "52262720120304002" + check_digit("52262720120304002")


def valid_student(**changes: Any) -> dict[str, Any]:
    student: dict[str, Any] = {
        "name": "杨小明",
        "former_name": None,
        "sex": "1",
        "birth_date": "2012-03-04",
        "id_type": "1",
        "id_number": ID,
        "ethnicity": "12",
        "hukou_area": "522627",
        "hukou_address": "天柱县高酿镇某村",
        "school_code": "2152000123",
        "grade": 6,
        "class_name": "六（1）班",
        "enrolled_month": "2018-09",
        "enrolment_mode": "11",
        "boarding_mode": "2",
        "health": "1",
        "height_cm": 142.5,
        "weight_kg": 34,
        "left_behind": "2",
        "migrant_child": False,
        "boarding_allowance": True,
        "address": "天柱县高酿镇某村",
        "guardian_name": "杨大山",
        "guardian_phone": "13812345678",
        "file_card_no": "JD-0001",
        "student_number": ID,
        "student_number_aux": None,
        "national_student_number": "G" + ID,
    }
    student.update(changes)
    return student


def passport_student(**changes: Any) -> dict[str, Any]:
    """No resident ID, so date and grade rules can be tested without the ID cross-checks."""
    return valid_student(**{"id_type": "A", "id_number": "E12345678", "national_student_number": None, **changes})


def check(data: dict[str, Any], *, today: date = TODAY, codes: CodeTables = CODES) -> list[Finding]:
    return check_student(data, today=today, codes=codes)


def codes_of(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.field, f.code, f.severity) for f in findings]


def test_a_valid_student_has_no_findings() -> None:
    assert check(valid_student()) == []


def test_only_the_required_fields_are_enough() -> None:
    data = {field: valid_student()[field] for field in REQUIRED_FIELDS}
    assert check(data) == []


def test_an_empty_record_lists_every_required_field() -> None:
    assert codes_of(check({})) == [(f, "required", "error") for f in REQUIRED_FIELDS]


# Required fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", REQUIRED_FIELDS)
@pytest.mark.parametrize("blank", [None, "", "   ", "\u3000", "absent"])
def test_a_missing_required_field_is_one_error(field: str, blank: Any) -> None:
    data = valid_student()
    if blank == "absent":
        del data[field]
    else:
        data[field] = blank
    assert check(data) == [Finding(field, "required", f"{FIELD_LABELS[field]}：必填", "error")]


# Code tables -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sex", "0"), ("sex", "9"), ("sex", "男"), ("id_type", "2"), ("id_type", "B"), ("ethnicity", "1"),
        ("ethnicity", "57"), ("ethnicity", "汉族"), ("enrolment_mode", "13"), ("boarding_mode", "3"),
        ("health", "4"), ("health", "5"), ("left_behind", "3"),
    ],
)
def test_a_code_outside_its_table_is_an_error(field: str, value: str) -> None:
    assert check(valid_student(**{field: value})) == [
        Finding(field, "unknown_code", f"{FIELD_LABELS[field]}：“{value}”不是有效的代码", "error")
    ]


@pytest.mark.parametrize(
    ("field", "table"),
    [("ethnicity", "ethnicity"), ("enrolment_mode", "enrolment_mode"), ("health", "health"),
     ("left_behind", "left_behind")],
)
def test_every_code_of_the_table_is_accepted(field: str, table: str) -> None:
    for item in CODES.table(table):
        assert check(valid_student(**{field: item.code})) == [], item


@pytest.mark.parametrize("id_type", ["6", "7", "8", "9", "A", "Z", "a", "z"])
def test_other_document_types_take_any_number(id_type: str) -> None:
    assert check(valid_student(id_type=id_type, id_number="H0123456(7)")) == []


def test_county_codes_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "ethnicity.csv").write_text("code,label\n99,穿青人\n", encoding="utf-8")
    assert check(valid_student(ethnicity="99")) != []
    assert check(valid_student(ethnicity="99"), codes=CodeTables(extra_dir=tmp_path)) == []


def test_integer_codes_are_read_as_strings() -> None:
    assert check(valid_student(sex=1, boarding_mode=2, left_behind=0)) == []


# Resident ID number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_number", "code", "message"),
    [
        (ID[:-1], "length", "身份证件号：长度错误：应为 18 位（或旧版 15 位），实为 17 位"),
        (ID[:16] + "A" + ID[17], "non_digit", "身份证件号：第 17 位“A”不是数字"),
        ("52262720120230001" + check_digit("52262720120230001"), "birth_date", "身份证件号：出生日期无效：20120230"),
        (ID[:17] + ("0" if ID[17] != "0" else "1"), "check_digit",
         f"身份证件号：校验位错误：应为 {ID[17]}，实为 {'0' if ID[17] != '0' else '1'}"),
    ],
)
def test_an_invalid_resident_id_is_an_error(id_number: str, code: str, message: str) -> None:
    findings = check(valid_student(id_number=id_number, student_number=None, national_student_number=None))
    assert findings == [Finding("id_number", code, message, "error")]


def test_the_standard_example_check_message() -> None:
    findings = check(passport_student(id_type="1", id_number="110105194912310025"))
    assert Finding("id_number", "check_digit", "身份证件号：校验位错误：应为 X，实为 5", "error") in findings


@pytest.mark.parametrize(
    "typed", [ID.replace("", " ").strip(), ID.translate(str.maketrans("0123456789", "０１２３４５６７８９"))]
)
def test_spaces_and_full_width_digits_in_the_id_are_fine(typed: str) -> None:
    assert check(valid_student(id_number=typed)) == []


def test_a_lower_case_x_is_fine() -> None:
    first17 = "52262720120304006"
    assert check_digit(first17) == "X"  # the example must exercise the X
    number = first17 + "x"
    assert check(valid_student(id_number=number, sex="2", student_number=None, national_student_number=None)) == []


def test_sex_must_match_the_id() -> None:
    assert check(valid_student(sex="2")) == [
        Finding("sex", "id_mismatch", "性别：与身份证件号不符（身份证件号显示为男）", "error")
    ]
    assert codes_of(check(valid_student(id_number=GIRL_ID, national_student_number=None))) == [
        ("sex", "id_mismatch", "error")
    ]
    assert check(valid_student(id_number=GIRL_ID, sex="2", national_student_number=None)) == []


def test_birth_date_must_match_the_id() -> None:
    assert check(valid_student(birth_date="2012-03-05")) == [
        Finding("birth_date", "id_mismatch", "出生日期：与身份证件号中的出生日期 2012-03-04 不符", "error")
    ]


def test_an_invalid_id_raises_no_follow_on_mismatches() -> None:
    findings = check(valid_student(id_number=ID[:-1] + "Y", sex="2", birth_date="2012-03-05"))
    assert codes_of(findings) == [("id_number", "non_digit", "error")]


def test_a_15_digit_resident_id_is_upgraded_and_checked() -> None:
    # Old numbers belong to people born in the 1900s: a guardian-age student keeps the example simple.
    data = passport_student(id_type="1", id_number="522627850304001", birth_date="1985-03-04", grade=9)
    assert normalise_student(data)["id_number"] == "52262719850304001" + check_digit("52262719850304001")
    assert codes_of(check(data)) == [("grade", "age_for_grade", "warning")]


# Area codes: warnings only, and only once a county supplies an area table --------------------------


def area_codes(tmp_path: Path, *codes: str) -> CodeTables:
    (tmp_path / "area.csv").write_text("code,label\n" + "".join(f"{c},某县\n" for c in codes), encoding="utf-8")
    return CodeTables(extra_dir=tmp_path)


def test_no_area_table_no_area_warning() -> None:
    assert check(valid_student(id_number="99262720120304001" + check_digit("99262720120304001"),
                               student_number=None, national_student_number=None, hukou_area="999999")) == []


def test_known_areas_raise_nothing(tmp_path: Path) -> None:
    assert check(valid_student(), codes=area_codes(tmp_path, "522627")) == []


def test_unknown_areas_are_warnings(tmp_path: Path) -> None:
    findings = check(valid_student(), codes=area_codes(tmp_path, "520102"))
    assert findings == [
        Finding("id_number", "unknown_area", "身份证件号：地区码 522627 不在行政区划代码表中，请核对", "warning"),
        Finding("hukou_area", "unknown_area", "户籍所在地：522627 不在行政区划代码表中，请核对", "warning"),
    ]
    assert errors(findings) == []


@pytest.mark.parametrize("hukou_area", ["52262", "5226270", "52262a", "522627000000"])
def test_hukou_area_must_be_six_digits(hukou_area: str) -> None:
    assert codes_of(check(valid_student(hukou_area=hukou_area))) == [("hukou_area", "format", "error")]


# Dates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "code"),
    [
        ("2012-02-30", "invalid_date"),
        ("2012-13-01", "invalid_date"),
        ("2012-00-10", "invalid_date"),
        ("12-03-04", "invalid_date"),
        ("2012-03", "invalid_date"),
        ("2012-W10-1", "invalid_date"),
        ("三月四日", "invalid_date"),
        ("2024-10-09", "future"),
        ("2030-01-01", "future"),
    ],
)
def test_birth_date_must_be_a_real_past_date(birth_date: str, code: str) -> None:
    findings = check(passport_student(birth_date=birth_date, enrolled_month="2024-09", grade=1))
    assert ("birth_date", code, "error") in codes_of(findings)
    assert errors(findings)[0].message.startswith("出生日期：")


@pytest.mark.parametrize(
    "typed", ["2012-03-04", "2012-3-4", "2012/03/04", "2012.3.4", "20120304", "2012年3月4日", "２０１２－０３－０４",
              date(2012, 3, 4), datetime(2012, 3, 4)]
)
def test_birth_date_spellings_are_normalised(typed: Any) -> None:
    assert normalise_student({"birth_date": typed})["birth_date"] == "2012-03-04"
    assert check(valid_student(birth_date=typed)) == []


def test_a_birth_date_today_is_not_in_the_future() -> None:
    findings = check(passport_student(birth_date=TODAY.isoformat(), enrolled_month="2024-10"))
    assert "future" not in {f.code for f in findings}


def test_birth_date_of_a_wrong_type_is_an_error() -> None:
    assert codes_of(check(valid_student(birth_date=20120304))) == [("birth_date", "type", "error")]


@pytest.mark.parametrize(
    ("enrolled_month", "code"),
    [
        ("2018-13", "invalid_month"),
        ("2018-00", "invalid_month"),
        ("2018-09-01", "invalid_month"),
        ("18-09", "invalid_month"),
        ("九月", "invalid_month"),
        ("2024-11", "future"),
        ("2025-09", "future"),
        ("2012-02", "before_birth"),
        ("2011-12", "before_birth"),
    ],
)
def test_enrolled_month_rules(enrolled_month: str, code: str) -> None:
    assert codes_of(check(valid_student(enrolled_month=enrolled_month))) == [("enrolled_month", code, "error")]


@pytest.mark.parametrize("typed", ["2018-09", "2018-9", "2018/09", "2018.9", "201809", "2018年9月", "２０１８－０９"])
def test_enrolled_month_spellings_are_normalised(typed: str) -> None:
    assert normalise_student({"enrolled_month": typed})["enrolled_month"] == "2018-09"
    assert check(valid_student(enrolled_month=typed)) == []


@pytest.mark.parametrize("month", ["2024-10", "2012-03"])
def test_enrolment_this_month_or_in_the_birth_month_is_allowed(month: str) -> None:
    findings = check(valid_student(enrolled_month=month))
    assert errors(findings) == []


def test_today_may_be_a_datetime() -> None:
    assert check_student(valid_student(), today=datetime(2024, 10, 8, 23, 59), codes=CODES) == []


# School, grade, class ----------------------------------------------------------------------------


@pytest.mark.parametrize("school_code", ["215200012", "21520001234", "2152OOO123", "2152-00012", "٢١٥٢٠٠٠١٢٣"])
def test_school_code_must_be_ten_digits(school_code: str) -> None:
    assert codes_of(check(valid_student(school_code=school_code))) == [("school_code", "format", "error")]


def test_full_width_school_code_is_normalised() -> None:
    assert check(valid_student(school_code="２１５２０００１２３")) == []


@pytest.mark.parametrize("grade", [0, 10, -1, "十", "六年级", 6.0, True, "0"])
def test_grade_must_be_one_to_nine(grade: Any) -> None:
    assert codes_of(check(valid_student(grade=grade))) == [("grade", "invalid", "error")]


@pytest.mark.parametrize("grade", ["6", " 6 ", "６", 6])
def test_grade_as_digits_is_an_int(grade: Any) -> None:
    assert normalise_student({"grade": grade})["grade"] == 6
    assert check(valid_student(grade=grade)) == []


@pytest.mark.parametrize(
    ("birth_date", "grade", "today", "warned"),
    [
        # Age on 1 September of the current school year must lie in grade+5 … grade+8.
        ("2018-09-01", 1, date(2024, 10, 8), False),  # turns 6 on the day
        ("2018-09-02", 1, date(2024, 10, 8), True),  # still 5
        ("2015-09-02", 1, date(2024, 10, 8), False),  # 8, turns 9 the next day
        ("2015-09-01", 1, date(2024, 10, 8), False),  # 9: late entry is common
        ("2014-09-01", 1, date(2024, 10, 8), True),  # 10
        ("2018-09-01", 1, date(2025, 8, 31), False),  # August still belongs to the 2024 school year
        ("2018-09-02", 1, date(2025, 9, 1), False),  # a new school year: 6 now
        ("2010-09-01", 9, date(2024, 10, 8), False),  # 14 in grade 9
        ("2010-09-02", 9, date(2024, 10, 8), True),  # 13 in grade 9
        ("2007-09-01", 9, date(2024, 10, 8), False),  # 17
        ("2006-09-01", 9, date(2024, 10, 8), True),  # 18
        ("2013-05-01", 5, date(2023, 10, 1), False),  # initial load: enrolled 2019-09, now 10 in grade 5
    ],
)
def test_age_outside_the_usual_band_for_the_grade_is_a_warning(
    birth_date: str, grade: int, today: date, warned: bool
) -> None:
    findings = check(passport_student(birth_date=birth_date, grade=grade, enrolled_month="2019-09"), today=today)
    assert errors(findings) == []
    assert bool(warnings(findings)) is warned, findings


def test_the_age_warning_names_band_and_age() -> None:
    findings = check(passport_student(birth_date="2018-09-02", grade=1, enrolled_month="2024-09"))
    assert findings == [
        Finding("grade", "age_for_grade",
                "年级：1 年级学生在 2024 年 9 月 1 日通常为 6–9 岁，该生为 5 岁，请核对年级和出生日期", "warning")
    ]


# Boarding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("boarding_mode", "allowance", "expected"),
    [
        ("1", True, [("boarding_allowance", "day_student", "warning")]),
        ("1", "1", [("boarding_allowance", "day_student", "warning")]),
        ("1", "是", [("boarding_allowance", "day_student", "warning")]),
        ("1", False, []),
        ("1", None, []),
        ("2", True, []),
        ("2", False, []),
        ("3", True, [("boarding_mode", "unknown_code", "error")]),
    ],
)
def test_a_day_pupil_with_the_boarding_allowance_is_a_warning(boarding_mode: str, allowance: Any, expected: list[Any]) -> None:
    assert codes_of(check(valid_student(boarding_mode=boarding_mode, boarding_allowance=allowance))) == expected


def test_the_day_student_message() -> None:
    assert check(valid_student(boarding_mode="1", boarding_allowance=True)) == [
        Finding("boarding_allowance", "day_student",
                "享受一补：一补一般只补助寄宿生；走读生只有本县对走读生发放一补时才享受，否则不计一补", "warning")
    ]


@pytest.mark.parametrize("field", ["migrant_child", "boarding_allowance"])
@pytest.mark.parametrize(
    ("value", "normalised"),
    [(True, True), (False, False), (1, True), (0, False), ("1", True), ("0", False), ("是", True), ("否", False),
     ("true", True), ("False", False)],
)
def test_yes_no_fields_become_bools(field: str, value: Any, normalised: bool) -> None:
    assert normalise_student({field: value})[field] is normalised


@pytest.mark.parametrize("field", ["migrant_child", "boarding_allowance"])
@pytest.mark.parametrize("value", ["maybe", 2, 0.5, ["1"]])
def test_yes_no_fields_refuse_anything_else(field: str, value: Any) -> None:
    assert codes_of(check(valid_student(**{field: value}))) == [(field, "type", "error")]


# Height and weight -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("height_cm", 80, []),
        ("height_cm", 200, []),
        ("height_cm", "142.5", []),
        ("height_cm", "１４２", []),
        ("height_cm", 79.9, [("height_cm", "implausible", "warning")]),
        ("height_cm", 200.1, [("height_cm", "implausible", "warning")]),
        ("height_cm", 1.42, [("height_cm", "implausible", "warning")]),
        ("height_cm", 0, [("height_cm", "implausible", "warning")]),
        ("weight_kg", 12, []),
        ("weight_kg", 120, []),
        ("weight_kg", 11.9, [("weight_kg", "implausible", "warning")]),
        ("weight_kg", 121, [("weight_kg", "implausible", "warning")]),
        ("weight_kg", 34000, [("weight_kg", "implausible", "warning")]),
        ("height_cm", "一米四", [("height_cm", "type", "error")]),
        ("height_cm", "nan", [("height_cm", "type", "error")]),
        ("weight_kg", "inf", [("weight_kg", "type", "error")]),
        ("weight_kg", True, [("weight_kg", "type", "error")]),
        ("weight_kg", None, []),
        ("weight_kg", "", []),
    ],
)
def test_height_and_weight(field: str, value: Any, expected: list[Any]) -> None:
    assert codes_of(check(valid_student(**{field: value}))) == expected


def test_the_height_warning_hints_at_units() -> None:
    assert check(valid_student(height_cm=1.42)) == [
        Finding("height_cm", "implausible", "身高：1.42 厘米超出常见范围 80–200 厘米，请核对单位和数值", "warning")
    ]


# Names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "warned"),
    [("杨小明", False), ("阿依古丽·买买提", False), ("杨小明2", True), ("Yang Xiaoming", True), ("杨ａ", True),
     ("杨３", True)],
)
@pytest.mark.parametrize("field", ["name", "former_name"])
def test_digits_or_latin_letters_in_a_name_are_a_warning(field: str, name: str, warned: bool) -> None:
    expected = [(field, "latin_or_digit", "warning")] if warned else []
    assert codes_of(check(valid_student(**{field: name}))) == expected


@pytest.mark.parametrize("field", ["name", "class_name", "guardian_name", "id_number", "school_code", "sex"])
def test_text_fields_of_another_type_are_errors(field: str) -> None:
    assert codes_of(check(valid_student(**{field: ["x"]}))) == [(field, "type", "error")]


# Guardian phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("19912345678", "19912345678"),
        ("0851-8123456", "0851-8123456"),
        ("0851－81234567", "0851-81234567"),
        ("08558123456", "08558123456"),
        ("010-12345678", "010-12345678"),
    ],
)
def test_valid_guardian_phones(typed: str, normalised: str) -> None:
    assert normalise_student({"guardian_phone": typed})["guardian_phone"] == normalised
    assert check(valid_student(guardian_phone=typed)) == []


@pytest.mark.parametrize(
    "phone",
    ["12812345678", "1381234567", "138123456789", "851-8123456", "0851-123456", "0851-123456789", "电话", "110"],
)
def test_invalid_guardian_phones(phone: str) -> None:
    assert codes_of(check(valid_student(guardian_phone=phone))) == [("guardian_phone", "format", "error")]


# National student number -------------------------------------------------------------------------


def test_a_j_or_l_number_is_fine_for_a_student_with_an_id() -> None:
    j_body = "52262720120304005" + check_digit("52262720120304005")
    assert check(valid_student(national_student_number="J" + j_body)) == []
    assert check(valid_student(national_student_number="L" + j_body[:-1] + "X")) == []


def test_a_bad_national_student_number_is_an_error() -> None:
    findings = check(valid_student(national_student_number="G" + ID[:-1] + ("0" if ID[17] != "0" else "1")))
    assert codes_of(findings) == [("national_student_number", "id_check_digit", "error")]
    assert findings[0].message.startswith("全国学籍号：")


def test_a_g_number_of_another_person_is_a_warning() -> None:
    assert check(valid_student(national_student_number="G" + GIRL_ID)) == [
        Finding("national_student_number", "id_mismatch", "全国学籍号：G 字头学籍号与身份证件号不一致，请核对",
                "warning")
    ]


def test_national_student_number_is_normalised() -> None:
    out = normalise_student({"national_student_number": " g" + ID.lower() + " "})
    assert out["national_student_number"] == "G" + ID


# Normalisation -----------------------------------------------------------------------------------


def test_normalise_trims_strings_and_blanks_become_none() -> None:
    out = normalise_student({"name": " 杨小明\u3000", "address": "   ", "class_name": "六（1）班 "})
    assert out == {"name": "杨小明", "address": None, "class_name": "六（1）班"}


def test_normalise_keeps_unknown_keys_and_adds_none_of_its_own() -> None:
    assert normalise_student({"photo_file_id": 7, "comment": " x "}) == {"photo_file_id": 7, "comment": "x"}


def test_normalise_upper_cases_the_id_type() -> None:
    assert normalise_student({"id_type": "a"})["id_type"] == "A"


def test_normalise_upgrades_only_resident_ids() -> None:
    assert normalise_student({"id_type": "1", "id_number": "110105491231002"})["id_number"] == "11010519491231002X"
    assert normalise_student({"id_type": "A", "id_number": "110105491231002"})["id_number"] == "110105491231002"


def test_normalise_student_number_like_an_id() -> None:
    assert normalise_student({"student_number": " 11010519491231002x"})["student_number"] == "11010519491231002X"


def test_normalise_does_not_mutate_its_input_and_is_idempotent() -> None:
    raw = valid_student(
        name=" 杨小明 ", birth_date="2012/3/4", enrolled_month="2018-9", grade="６", id_number=" " + ID.lower(),
        guardian_phone="+86 138-1234-5678", height_cm="142.5", boarding_allowance="是", sex=1,
    )
    copy = dict(raw)
    once = normalise_student(raw)
    assert raw == copy
    assert normalise_student(once) == once
    assert once == valid_student(height_cm=142.5, weight_kg=34.0)


def test_check_student_does_not_mutate_its_input() -> None:
    raw = valid_student(name=" 杨小明 ")
    check(raw)
    assert raw["name"] == " 杨小明 "


def test_every_message_starts_with_the_field_label() -> None:
    messy = {
        "name": "Yang3", "former_name": "A", "sex": "9", "birth_date": "2030-01-01", "id_type": "1",
        "id_number": "123", "ethnicity": "99", "hukou_area": "1", "school_code": "1", "grade": 12,
        "class_name": ["x"], "enrolled_month": "2030-01", "enrolment_mode": "0", "boarding_mode": "1",
        "health": "9", "height_cm": 500, "weight_kg": "heavy", "left_behind": "5", "migrant_child": "x",
        "boarding_allowance": True, "guardian_phone": "1", "national_student_number": "X1",
    }
    findings = check(messy)
    assert {f.field for f in findings} == set(messy) - {"id_type", "boarding_mode"}
    for finding in findings:
        assert finding.message.startswith(FIELD_LABELS[finding.field] + "："), finding


# 学籍主号 under a guardian's ID, told apart by 学籍辅号 ----------------------------------------------
# The student (valid_student) is a boy born 2012-03-04; TODAY is 2024-10-08.

MOTHER_ID = "52262719850611002" + check_digit("52262719850611002")  # a woman born 1985-06-11
FATHER_ID = "52262719830120001" + check_digit("52262719830120001")  # a man born 1983-01-20
GUARDIAN_WARNING = Finding("id_number", "guardian_id", "身份证件号：持有人出生于 1985-06-11，不是学生本人；"
                                                         "按监护人身份证号作学籍主号登记（学籍辅号 2），请核对", "warning")


def guardian_student(id_number: str = MOTHER_ID, **changes: Any) -> dict[str, Any]:
    return valid_student(**{"id_number": id_number, "student_number": None, "national_student_number": None,
                            "student_number_aux": "2", **changes})


def holder_id(birth: date, seq: int = 2) -> str:
    first17 = f"522627{birth:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


def test_with_an_aux_number_a_guardians_id_is_one_warning_whatever_the_guardians_sex() -> None:
    assert check(guardian_student()) == [GUARDIAN_WARNING]
    assert codes_of(check(guardian_student(FATHER_ID))) == [("id_number", "guardian_id", "warning")]


def test_without_an_aux_number_a_guardians_id_is_an_error_that_says_to_fill_it_in() -> None:
    findings = check(guardian_student(student_number_aux=None))
    assert findings == [
        Finding("sex", "id_mismatch", "性别：与身份证件号不符（身份证件号显示为女）", "error"),
        Finding("birth_date", "id_mismatch", "出生日期：与身份证件号中的出生日期 1985-06-11 不符；"
                                             "如这是监护人的身份证号（学生本人无身份证），请填写学籍辅号", "error"),
    ]


@pytest.mark.parametrize("blank", ["", "   ", "\u3000", None, "absent"])
def test_a_blank_aux_number_is_no_aux_number(blank: Any) -> None:
    data = guardian_student(FATHER_ID)
    if blank == "absent":
        del data["student_number_aux"]
    else:
        data["student_number_aux"] = blank
    assert codes_of(check(data)) == [("birth_date", "id_mismatch", "error")]


def test_the_aux_number_is_trimmed_and_named_in_the_warning() -> None:
    assert normalise_student({"student_number_aux": " 2 "})["student_number_aux"] == "2"
    assert check(guardian_student(student_number_aux=" 2\u3000")) == [GUARDIAN_WARNING]


def test_the_students_own_id_with_an_aux_number_is_checked_as_ever() -> None:
    assert check(valid_student(student_number_aux="1")) == []
    # Same birth date: the student's own number, so a wrong sex stays an error.
    assert codes_of(check(valid_student(student_number_aux="1", sex="2"))) == [("sex", "id_mismatch", "error")]


@pytest.mark.parametrize(
    ("holder_born", "guardian"),
    [
        (date(2006, 10, 8), True),  # 18 today
        (date(2006, 10, 9), False),  # 18 tomorrow
        (date(1950, 1, 1), True),  # a grandparent
        (date(2000, 2, 29), True),
        (date(2012, 3, 3), False),  # a day older than the student, a child
    ],
)
def test_the_holder_must_be_an_adult_to_be_a_guardian(holder_born: date, guardian: bool) -> None:
    findings = check(guardian_student(holder_id(holder_born)))
    if guardian:
        assert codes_of(findings) == [("id_number", "guardian_id", "warning")]
    else:
        assert codes_of(findings) == [("sex", "id_mismatch", "error"), ("birth_date", "id_mismatch", "error")]
        assert findings[1].message == (f"出生日期：与身份证件号中的出生日期 {holder_born.isoformat()} 不符；"
                                       "证件持有人未满 18 周岁，也不可能是监护人的身份证号")


@pytest.mark.parametrize("holder_born", [date(2013, 5, 1), date(2012, 3, 5), date(2020, 1, 1)])
def test_a_holder_younger_than_the_student_cannot_be_a_guardian(holder_born: date) -> None:
    findings = check(guardian_student(holder_id(holder_born, seq=1)))
    assert findings == [Finding("birth_date", "id_mismatch", f"出生日期：与身份证件号中的出生日期 {holder_born.isoformat()}"
                                                             " 不符；证件持有人不比学生年长，也不可能是监护人的身份证号",
                                "error")]


def test_an_adult_holder_without_aux_gets_the_hint_a_child_holder_does_not() -> None:
    adult = check(guardian_student(FATHER_ID, student_number_aux=None))
    child = check(guardian_student(holder_id(date(2010, 1, 1), seq=1), student_number_aux=None))
    assert "请填写学籍辅号" in adult[-1].message
    assert child == [Finding("birth_date", "id_mismatch", "出生日期：与身份证件号中的出生日期 2010-01-01 不符", "error")]


def test_a_guardians_id_is_still_checked_as_a_resident_id() -> None:
    broken = MOTHER_ID[:17] + ("0" if MOTHER_ID[17] != "0" else "1")
    assert codes_of(check(guardian_student(broken))) == [("id_number", "check_digit", "error")]
    assert codes_of(check(guardian_student(MOTHER_ID[:-1]))) == [("id_number", "length", "error")]


def test_a_guardians_old_15_digit_id_is_upgraded_and_accepted() -> None:
    findings = check(guardian_student("522627850611002"))
    assert findings == [GUARDIAN_WARNING]
    assert normalise_student(guardian_student("522627850611002"))["id_number"] == MOTHER_ID


@pytest.mark.parametrize("birth_date", [None, "", "2012-02-30", "2030-01-01"])
def test_without_a_usable_birth_date_whose_id_it_is_stays_open(birth_date: Any) -> None:
    # Only the birth-date finding: neither a sex mismatch nor a guardian warning can be told.
    findings = check(guardian_student(birth_date=birth_date))
    assert [f.field for f in findings] == ["birth_date"] and errors(findings) == findings


def test_without_a_usable_birth_date_and_no_aux_the_sex_is_still_checked() -> None:
    findings = check(guardian_student(birth_date=None, student_number_aux=None))
    assert codes_of(findings) == [("birth_date", "required", "error"), ("sex", "id_mismatch", "error")]


@pytest.mark.parametrize("id_type", ["6", "A", "Z"])
def test_other_document_types_with_an_aux_number_are_taken_as_typed(id_type: str) -> None:
    assert check(guardian_student("E12345678", id_type=id_type)) == []


@pytest.mark.parametrize(
    ("national", "expected"),
    [
        ("G" + MOTHER_ID, [("national_student_number", "guardian_id", "warning")]),
        ("G" + ID, [("national_student_number", "guardian_id", "warning")]),
        ("J" + MOTHER_ID, []),
        ("L" + MOTHER_ID[:-1] + "X", []),
    ],
)
def test_a_child_under_a_guardians_id_has_a_j_or_l_national_number(national: str, expected: list[Any]) -> None:
    findings = check(guardian_student(national_student_number=national))
    assert codes_of(findings) == [("id_number", "guardian_id", "warning"), *expected]
    assert all(f.message.startswith(FIELD_LABELS[f.field] + "：") for f in findings)


def test_guardian_findings_never_block() -> None:
    assert errors(check(guardian_student(national_student_number="G" + MOTHER_ID))) == []


# Lengths: the database's column widths, reported beside the field -------------------------------


def test_the_length_limits_are_the_column_widths() -> None:
    from registry.students import Student

    widths = {name: Student.__table__.c[name].type.length for name in MAX_LENGTHS}
    assert MAX_LENGTHS == widths


@pytest.mark.parametrize("field", sorted(MAX_LENGTHS))
def test_text_longer_than_its_column_is_an_error(field: str) -> None:
    limit = MAX_LENGTHS[field]
    data = passport_student(**{"student_number": None, field: "字" * (limit + 1)})
    findings = check(data)
    too_long = Finding(field, "too_long", f"{FIELD_LABELS[field]}：不能超过 {limit} 个字（现为 {limit + 1} 个）", "error")
    assert too_long in findings
    assert [f for f in findings if f.field == field] == [too_long]


@pytest.mark.parametrize("field", ["class_name", "address", "file_card_no", "student_number_aux"])
def test_text_as_long_as_its_column_is_fine(field: str) -> None:
    assert check(valid_student(**{field: "字" * MAX_LENGTHS[field]})) == []
