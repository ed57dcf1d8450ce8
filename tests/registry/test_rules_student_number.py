import pytest

from registry.rules.findings import Finding
from registry.rules.id_number import check_digit
from registry.rules.student_number import normalise_national_student_number, validate_national_student_number

ID = "11010519491231002X"
J_BODY = "52262720120304001" + check_digit("52262720120304001")
WRONG_CHECK = "0" if J_BODY[-1] != "0" else "1"


@pytest.mark.parametrize(
    "number",
    [
        "G" + ID,
        "g" + ID.lower(),
        " G 110105 19491231 002X ",
        "Ｇ１１０１０５１９４９１２３１００２Ｘ",
        "J" + J_BODY,
        "L" + J_BODY[:-1] + WRONG_CHECK,  # temporary numbers carry no valid check character
        "L" + J_BODY,
        "L52262720120304001X",
    ],
)
def test_valid_national_student_numbers(number: str) -> None:
    assert validate_national_student_number(number) == []


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("", "empty", "全国学籍号：为空"),
        ("  ", "empty", "全国学籍号：为空"),
        (ID, "prefix", "全国学籍号：应以 G、J 或 L 开头，实为“1”"),
        ("X" + ID, "prefix", "全国学籍号：应以 G、J 或 L 开头，实为“X”"),
        ("G110105491231002", "length", "全国学籍号：G 之后应为 18 位，实为 15 位"),
        ("J" + J_BODY + "1", "length", "全国学籍号：J 之后应为 18 位，实为 19 位"),
        ("L123", "length", "全国学籍号：L 之后应为 18 位，实为 3 位"),
        ("G110105194912310025", "id_check_digit", "全国学籍号：G 之后的身份证号校验位错误：应为 X，实为 5"),
        ("G110105199902300011", "id_birth_date", "全国学籍号：G 之后的身份证号中的出生日期无效：19990230"),
        ("G1101051949123100AX", "id_non_digit", "全国学籍号：G 之后的身份证号第 17 位“A”不是数字"),
        ("J" + J_BODY[:-1] + WRONG_CHECK, "check_digit",
         f"全国学籍号：校验位错误：应为 {J_BODY[-1]}，实为 {WRONG_CHECK}"),
        ("J5226272012030400AX", "format", "全国学籍号：J 之后应为 17 位数字加 1 位数字或 X"),
        ("L5226272012030400AX", "format", "全国学籍号：L 之后应为 17 位数字加 1 位数字或 X"),
        ("L52262720120304001Y", "format", "全国学籍号：L 之后应为 17 位数字加 1 位数字或 X"),
    ],
)
def test_invalid_national_student_numbers(number: str, code: str, message: str) -> None:
    assert validate_national_student_number(number) == [
        Finding("national_student_number", code, message, "error")
    ]


def test_j_numbers_need_no_real_birth_date() -> None:
    # J numbers are issued by the 学籍 system, not derived from a person: only the check counts.
    body = "52262719990230001"
    assert validate_national_student_number("J" + body + check_digit(body)) == []


def test_normalise_national_student_number() -> None:
    assert normalise_national_student_number(" ｇ１１０１０５１９４９１２３１００２ｘ ") == "G" + ID
