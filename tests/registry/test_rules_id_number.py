import dataclasses
import random
import time
from datetime import date

import pytest
from stdnum.cn import ric

from registry.rules.id_number import (
    InvalidIdNumber,
    ParsedId,
    check_digit,
    normalise_id_number,
    parse_id_number,
    upgrade_15,
)

# The example of GB 11643-1999 itself.
STANDARD_EXAMPLE = "11010519491231002X"


def with_check(first17: str) -> str:
    return first17 + check_digit(first17)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("11010519491231002X", "11010519491231002X"),
        ("11010519491231002x", "11010519491231002X"),
        ("11010519491231002Ｘ", "11010519491231002X"),
        ("11010519491231002ｘ", "11010519491231002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
        ("  110105 19491231 002X ", "11010519491231002X"),
        ("\u3000110105194912310 02X\t\n", "11010519491231002X"),
        ("", ""),
        ("abc", "abc"),  # letters other than x are not this function's business
    ],
)
def test_normalise_id_number(raw: str, expected: str) -> None:
    assert normalise_id_number(raw) == expected


def test_normalise_is_idempotent() -> None:
    once = normalise_id_number(" １１０１０５１９４９１２３１００２ｘ ")
    assert normalise_id_number(once) == once


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("11010519491231002", "X"),
        ("44052418800101001", "4"),
        ("00000000000000000", "1"),
        ("99999999999999999", "3"),
    ],
)
def test_check_digit_known_values(first17: str, expected: str) -> None:
    assert check_digit(first17) == expected


def test_check_digit_covers_every_check_character() -> None:
    # Varying the last digit of the 17 walks the sum through 10 of the 11 residues; varying the
    # first one too reaches the rest.
    seen = {check_digit(f"{a}1010519491231{b:03d}") for a in range(10) for b in range(1000)}
    assert seen == set("0123456789X")


@pytest.mark.parametrize(
    "bad", ["", "1101051949123100", "110105194912310021", "1101051949123100A", "１１０１０５１９４９１２３１００２"]
)
def test_check_digit_refuses_anything_but_17_ascii_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="17 ASCII digits"):
        check_digit(bad)


def test_check_digit_agrees_with_python_stdnum_on_100000_numbers() -> None:
    rng = random.Random(20111026)  # seeded: the same numbers on every run
    started = time.perf_counter()
    for _ in range(100_000):
        first17 = "".join(rng.choices("0123456789", k=17))
        # stdnum computes the check character of a full number, ignoring its last character.
        assert check_digit(first17) == ric.calc_check_digit(first17 + "0"), first17
    assert time.perf_counter() - started < 10


def test_generated_numbers_are_valid_for_stdnum_too() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        born = date(2005, 1, 1).toordinal() + rng.randrange(7000)
        first17 = "522627" + date.fromordinal(born).strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
        number = with_check(first17)
        assert ric.is_valid(number), number
        assert parse_id_number(number).number == number


@pytest.mark.parametrize(
    ("raw15", "expected"),
    [
        ("110105491231002", "11010519491231002X"),
        ("１１０１０５４９１２３１００２", "11010519491231002X"),
        (" 110105 491231 002 ", "11010519491231002X"),
        ("522627850101123", with_check("52262719850101123")),
    ],
)
def test_upgrade_15_inserts_19_and_appends_the_check_digit(raw15: str, expected: str) -> None:
    assert upgrade_15(raw15) == expected


@pytest.mark.parametrize(
    ("raw15", "code"),
    [
        ("11010549123100", "length"),
        ("1101054912310021", "length"),
        ("11010549123100X", "non_digit"),
        ("1101a5491231002", "non_digit"),
    ],
)
def test_upgrade_15_refuses_what_is_not_a_15_digit_number(raw15: str, code: str) -> None:
    with pytest.raises(InvalidIdNumber) as caught:
        upgrade_15(raw15)
    assert caught.value.code == code


def test_parse_the_standard_example() -> None:
    assert parse_id_number(STANDARD_EXAMPLE) == ParsedId(
        number=STANDARD_EXAMPLE,
        area="110105",
        birth_date=date(1949, 12, 31),
        sex="2",
        upgraded_from_15=False,
    )


def test_parse_normalises_first() -> None:
    parsed = parse_id_number(" １１０１０５ １９４９１２３１ ００２ｘ ")
    assert parsed.number == STANDARD_EXAMPLE
    assert not parsed.upgraded_from_15


def test_parse_upgrades_a_15_digit_number() -> None:
    parsed = parse_id_number("110105491231002")
    assert parsed.number == STANDARD_EXAMPLE
    assert parsed.birth_date == date(1949, 12, 31)
    assert parsed.upgraded_from_15


@pytest.mark.parametrize(("sequence", "sex"), [(f"00{d}", "1" if d % 2 else "2") for d in range(10)])
def test_sex_follows_the_parity_of_the_17th_digit(sequence: str, sex: str) -> None:
    assert parse_id_number(with_check(f"52262720120304{sequence}")).sex == sex


@pytest.mark.parametrize("birth", ["19000101", "20000229", "20121231", "20240229"])
def test_real_birth_dates_are_accepted(birth: str) -> None:
    parsed = parse_id_number(with_check(f"522627{birth}001"))
    assert parsed.birth_date.strftime("%Y%m%d") == birth


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        ("", "empty", "身份证号为空"),
        ("   ", "empty", "身份证号为空"),
        ("1101051949123100", "length", "身份证号长度错误：应为 18 位（或旧版 15 位），实为 16 位"),
        ("11010519491231002", "length", "身份证号长度错误：应为 18 位（或旧版 15 位），实为 17 位"),
        ("11010519491231002XX", "length", "身份证号长度错误：应为 18 位（或旧版 15 位），实为 19 位"),
        ("1101051949123100AX", "non_digit", "身份证号第 17 位“A”不是数字"),
        ("X1010519491231002X", "non_digit", "身份证号第 1 位“X”不是数字"),
        ("11010519491231002Y", "non_digit", "身份证号第 18 位“Y”无效：末位只能是数字或 X"),
        ("1101a5491231002", "non_digit", "身份证号第 5 位“a”不是数字"),
        ("110105199902300011", "birth_date", "身份证号中的出生日期无效：19990230"),
        ("110105200002300011", "birth_date", "身份证号中的出生日期无效：20000230"),
        ("110105190002290011", "birth_date", "身份证号中的出生日期无效：19000229"),
        ("110105202313010011", "birth_date", "身份证号中的出生日期无效：20231301"),
        ("110105202300010011", "birth_date", "身份证号中的出生日期无效：20230001"),
        ("110105189912310011", "birth_date", "身份证号中的出生日期无效：18991231"),
        ("110105491331002", "birth_date", "身份证号中的出生日期无效：19491331"),
        ("110105194912310025", "check_digit", "身份证号校验位错误：应为 X，实为 5"),
        ("110105194912310020", "check_digit", "身份证号校验位错误：应为 X，实为 0"),
        ("11010519491231003X", "check_digit", "身份证号校验位错误：应为 8，实为 X"),
    ],
)
def test_each_failure_has_its_own_code_and_message(raw: str, code: str, message: str) -> None:
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number(raw)
    assert (caught.value.code, caught.value.message, str(caught.value)) == (code, message, message)


def test_detail_omits_the_subject_for_callers_that_name_the_field() -> None:
    with pytest.raises(InvalidIdNumber) as caught:
        parse_id_number("110105194912310025")
    assert caught.value.detail == "校验位错误：应为 X，实为 5"


def test_invalid_id_number_is_a_value_error() -> None:
    assert issubclass(InvalidIdNumber, ValueError)


def test_every_single_digit_typo_is_caught() -> None:
    # The point of MOD 11-2: any one mistyped character is detected.
    for position in range(18):
        for replacement in "0123456789X":
            if replacement == STANDARD_EXAMPLE[position] or (replacement == "X" and position < 17):
                continue
            typo = STANDARD_EXAMPLE[:position] + replacement + STANDARD_EXAMPLE[position + 1:]
            with pytest.raises(InvalidIdNumber):
                parse_id_number(typo)


def test_parsed_id_is_immutable() -> None:
    parsed = parse_id_number(STANDARD_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.sex = "1"  # type: ignore[misc]
