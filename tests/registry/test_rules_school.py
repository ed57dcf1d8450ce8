import pytest

from registry.code_tables import load_code_tables
from registry.rules.school import check_school

VALID = {
    "code": "2152019901", "name": "城关镇中心小学", "sponsor_type": "811", "urban_rural": "121",
    "school_type": "211", "subsidy_rate": "5.00", "meal_model": "1", "address": "城关镇建设路 1 号",
    "postcode": "556000", "phone": "0855-1234567", "fax": "0855-1234568", "email": "cgxx@example.cn",
    "website": "http://cgxx.example.cn", "principal_name": "王校长", "principal_phone": "0855-7654321",
    "principal_mobile": "13800001234",
}


def fields(data: dict) -> set[str]:
    return {f.field for f in check_school(data, codes=load_code_tables())}


def test_a_complete_valid_record_has_no_findings() -> None:
    assert check_school(VALID, codes=load_code_tables()) == []


@pytest.mark.parametrize("field, value", [
    ("code", "215201990"), ("code", "21520199AB"), ("name", "  "), ("sponsor_type", "999"),
    ("urban_rural", "300"), ("school_type", "111"), ("meal_model", "9"), ("subsidy_rate", "abc"),
    ("subsidy_rate", "0"), ("subsidy_rate", "25"), ("subsidy_rate", "5.123"), ("postcode", "55600"),
    ("phone", "12345"), ("fax", "abc"), ("principal_phone", "0855"), ("principal_mobile", "0855-1234567"),
    ("email", "not-an-email"), ("website", "not a site"),
])
def test_each_bad_value_is_named_by_its_field(field: str, value: str) -> None:
    assert fields({**VALID, field: value}) == {field}


def test_messages_are_chinese_and_name_the_field() -> None:
    finding = check_school({**VALID, "postcode": "1"}, codes=load_code_tables())[0]
    assert finding.message.startswith("邮政编码：") and finding.severity == "error"


def test_partial_updates_check_only_what_they_carry() -> None:
    assert check_school({"phone": "13900001111"}, codes=load_code_tables()) == []
    assert fields({"nickname": "x"}) == {"nickname"}


def test_empty_optional_fields_are_allowed() -> None:
    assert check_school({**VALID, "fax": "", "website": None, "email": ""}, codes=load_code_tables()) == []
