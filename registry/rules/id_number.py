"""Resident ID numbers (公民身份号码, GB 11643-1999).

18 characters: 6-digit area code (GB/T 2260) + birth date YYYYMMDD + 3-digit sequence (odd for
men) + an ISO 7064 MOD 11-2 check character (0-9 or X). Numbers issued before 1999 have 15 digits:
a 2-digit birth year and no check character.
"""

import re
from dataclasses import dataclass
from datetime import date

from registry.errors import msg

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# Typed on Chinese input methods, numbers arrive with full-width digits and a lower-case x.
_TO_ASCII = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "Ｘ": "X", "ｘ": "X", "x": "X"})
_DIGITS17 = re.compile(r"[0-9]{17}")
# The upgrade of 15-digit numbers assumed a 19xx birth year; a birth year before 1900 is a typo.
_EARLIEST_BIRTH_YEAR = 1900


class InvalidIdNumber(ValueError):
    """`message` stands alone ("身份证号校验位错误：…"); `detail` omits the subject, for callers that
    prefix their own field label ("身份证件号：校验位错误：…")."""

    def __init__(self, code: str, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail or message


@dataclass(frozen=True)
class ParsedId:
    number: str  # normalised, always 18 characters
    area: str
    birth_date: date
    sex: str  # GB/T 2261.1: "1" male, "2" female
    upgraded_from_15: bool


def normalise_id_number(raw: str) -> str:
    return "".join(raw.split()).translate(_TO_ASCII)


def check_digit(first17: str) -> str:
    if not _DIGITS17.fullmatch(first17):
        raise ValueError(f"check_digit needs exactly 17 ASCII digits, got {first17!r}")
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def upgrade_15(raw15: str) -> str:
    number = normalise_id_number(raw15)
    if len(number) != 15:
        raise InvalidIdNumber("length", msg("旧版身份证号应为 15 位，实为 {length} 位", length=len(number)),
                              detail=msg("旧版号码应为 15 位，实为 {length} 位", length=len(number)))
    _require_digits(number, len(number))
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_digit(first17)


def parse_id_number(raw: str) -> ParsedId:
    number = normalise_id_number(raw)
    if not number:
        raise InvalidIdNumber("empty", msg("身份证号为空"), detail=msg("为空"))
    upgraded = len(number) == 15
    if upgraded:
        number = upgrade_15(number)
    elif len(number) != 18:
        detail = msg("长度错误：应为 18 位（或旧版 15 位），实为 {length} 位", length=len(number))
        raise InvalidIdNumber("length", msg("身份证号{detail}", detail=detail), detail=detail)
    else:
        _require_digits(number, 17)
        if number[17] not in "0123456789X":
            detail = msg("第 18 位“{char}”无效：末位只能是数字或 X", char=number[17])
            raise InvalidIdNumber("non_digit", msg("身份证号{detail}", detail=detail), detail=detail)
    birth = _birth_date(number[6:14])
    if not upgraded:
        expected = check_digit(number[:17])
        if number[17] != expected:
            detail = msg("校验位错误：应为 {expected}，实为 {found}", expected=expected, found=number[17])
            raise InvalidIdNumber("check_digit", msg("身份证号{detail}", detail=detail), detail=detail)
    return ParsedId(
        number=number,
        area=number[:6],
        birth_date=birth,
        sex="1" if int(number[16]) % 2 else "2",
        upgraded_from_15=upgraded,
    )


def _require_digits(number: str, count: int) -> None:
    for position, char in enumerate(number[:count], start=1):
        if char not in "0123456789":
            detail = msg("第 {position} 位“{char}”不是数字", position=position, char=char)
            raise InvalidIdNumber("non_digit", msg("身份证号{detail}", detail=detail), detail=detail)


def _birth_date(yyyymmdd: str) -> date:
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        birth = None
    if birth is None or birth.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidIdNumber("birth_date", msg("身份证号中的出生日期无效：{yyyymmdd}",
                                                yyyymmdd=yyyymmdd), detail=msg("出生日期无效：{yyyymmdd}", yyyymmdd=yyyymmdd))
    return birth
