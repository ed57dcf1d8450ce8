"""National student numbers (全国学籍号): one letter and 18 characters.

G + the student's resident ID number (the official form), J + 18 characters carrying a valid
GB 11643 check character (students without an ID number), L + 18 characters (temporary: the
check character is not valid, so only the shape is checked).
"""

import re
import unicodedata

from registry.errors import msg
from registry.rules.findings import Finding, error
from registry.rules.id_number import InvalidIdNumber, check_digit, parse_id_number

FIELD = "national_student_number"
LABEL = "全国学籍号"
_BODY = re.compile(r"[0-9]{17}[0-9X]")


def normalise_national_student_number(raw: str) -> str:
    # NFKC folds the full-width letters and digits of Chinese input methods (Ｇ１…) to ASCII.
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def validate_national_student_number(raw: str) -> list[Finding]:
    number = normalise_national_student_number(raw)
    if not number:
        return [error(FIELD, LABEL, "empty", msg("为空"))]
    prefix, body = number[0], number[1:]
    if prefix not in "GJL":
        return [error(FIELD, LABEL, "prefix", msg("应以 G、J 或 L 开头，实为“{prefix}”", prefix=prefix))]
    if len(body) != 18:
        return [error(FIELD, LABEL, "length", msg("{prefix} 之后应为 18 位，实为 {length} 位",
                                                  prefix=prefix, length=len(body)))]
    if prefix == "G":
        try:
            parse_id_number(body)
        except InvalidIdNumber as exc:
            return [error(FIELD, LABEL, f"id_{exc.code}", msg("G 之后的{message}", message=exc.message))]
        return []
    if not _BODY.fullmatch(body):
        return [error(FIELD, LABEL, "format", msg("{prefix} 之后应为 17 位数字加 1 位数字或 X", prefix=prefix))]
    if prefix == "J":
        expected = check_digit(body[:17])
        if body[17] != expected:
            return [error(FIELD, LABEL, "check_digit", msg("校验位错误：应为 {expected}，实为 {body}",
                                                           expected=expected, body=body[17]))]
    return []
