"""The rules for one student's record (Art. 10 fields), as pure functions.

`normalise_student` cleans what people type; `check_student` says what is wrong with it. Errors
block a submission; warnings are shown to the registrar and the reviewers and never block, because
rural data is often odd but true (late school entry, late 户口 registration).

学籍主号 under a guardian's ID (Art. 10; DESIGN "Domain facts"). A child without an ID card is
registered with id_type 1 and a guardian's resident ID number as 学籍主号, siblings told apart by
学籍辅号. The code tables have no id_type for "a guardian's ID", so the 辅号 is what says so:
- the number is always checked as a resident ID (length, digits, date, check digit): a guardian's
  number is a real one;
- with a non-blank student_number_aux and an ID birth date other than the student's, the number is
  read as a guardian's: no sex or birth-date mismatch errors, one `guardian_id` warning instead, so
  the reviewers see it — provided the holder can be a guardian, i.e. is older than the student and
  an adult today (民法典 Art. 17, 27: a guardian has full capacity). Otherwise the birth-date
  mismatch stays an error and says why the number cannot be a guardian's;
- an ID birth date equal to the student's means the student's own ID: sex must match, 辅号 or not;
- without a 辅号 the mismatches are errors as ever; when the holder could be a guardian, the
  birth-date error says to fill in the 辅号. A blank 辅号 is no 辅号.
"""

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from registry.code_tables import CodeTables
from registry.errors import msg
from registry.rules.findings import Finding, error, warning
from registry.rules.id_number import InvalidIdNumber, ParsedId, normalise_id_number, parse_id_number, upgrade_15
from registry.rules.student_number import normalise_national_student_number, validate_national_student_number

FIELD_LABELS: dict[str, str] = {
    "name": "姓名",
    "former_name": "曾用名",
    "sex": "性别",
    "birth_date": "出生日期",
    "id_type": "身份证件类型",
    "id_number": "身份证件号",
    "ethnicity": "民族",
    "hukou_area": "户籍所在地",
    "hukou_address": "户籍地址",
    "school_code": "学校代码",
    "grade": "年级",
    "class_name": "班级",
    "enrolled_month": "入学年月",
    "enrolment_mode": "入学方式",
    "boarding_mode": "就读方式",
    "health": "健康状况",
    "height_cm": "身高",
    "weight_kg": "体重",
    "left_behind": "留守儿童",
    "migrant_child": "随迁子女",
    "boarding_allowance": "享受一补",
    "address": "现住址",
    "guardian_name": "监护人姓名",
    "guardian_phone": "监护人电话",
    "file_card_no": "建档卡号",
    "student_number": "学籍号",
    "student_number_aux": "学籍辅号",
    "national_student_number": "全国学籍号",
}

REQUIRED_FIELDS = (
    "name", "sex", "birth_date", "id_type", "id_number", "ethnicity", "school_code", "grade",
    "class_name", "enrolled_month", "boarding_mode",
)

# field → code table; the table names are the field names by design.
CODE_FIELDS = ("sex", "id_type", "ethnicity", "enrolment_mode", "boarding_mode", "health", "left_behind")

RESIDENT_ID = "1"  # id_type 居民身份证
DAY_STUDENT = "1"  # boarding_mode 走读
AREA_TABLE = "area"  # GB/T 2260: Guizhou shipped (registry/codes/area.csv); a county may replace it

_TEXT_FIELDS = (
    "name", "former_name", "birth_date", "id_number", "hukou_area", "hukou_address", "school_code",
    "class_name", "enrolled_month", "address", "guardian_name", "guardian_phone", "file_card_no",
    "student_number", "student_number_aux", "national_student_number", *CODE_FIELDS,
)
# The column widths of registry/students.py `Student` (a test keeps them equal): longer text would
# be refused by PostgreSQL as a database error instead of a message beside the field.
MAX_LENGTHS = {
    "name": 50, "former_name": 50, "id_number": 30, "hukou_address": 200, "class_name": 40, "address": 200,
    "guardian_name": 50, "guardian_phone": 20, "file_card_no": 40, "student_number": 40, "student_number_aux": 40,
}
_BOOL_FIELDS = ("migrant_child", "boarding_allowance")
_NUMBER_FIELDS = ("height_cm", "weight_kg")
# Codes, dates and numbers typed on a Chinese keyboard arrive as full-width characters (２０１２－０３).
# Names and addresses are left alone: NFKC would also rewrite legitimate characters in them.
_WIDTH_NORMALISED = (
    *CODE_FIELDS, "hukou_area", "school_code", "grade", "birth_date", "enrolled_month", *_NUMBER_FIELDS,
)
_TRUE = ("1", "true", "是", "yes")
_FALSE = ("0", "false", "否", "no")

# re.ASCII: \d would otherwise also accept Arabic-Indic and other non-ASCII digits.
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{4})(\d{2})(\d{2})", re.ASCII)
_MONTH = re.compile(r"(\d{4})[-/.年](\d{1,2})月?|(\d{4})(\d{2})", re.ASCII)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_MONTH = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}", re.ASCII)
_SCHOOL_CODE = re.compile(r"\d{10}", re.ASCII)
_AREA_CODE = re.compile(r"\d{6}", re.ASCII)
_LATIN_OR_DIGIT = re.compile(r"[0-9A-Za-z]")

# Plausibility bands; outside them the value is most likely a typo (metres for centimetres, grams).
HEIGHT_CM = (80.0, 200.0)
WEIGHT_KG = (12.0, 120.0)
# Grade g is normally age 6+g-1 … 6+g+2 on 1 September: from the regular age (school starts at six)
# to three years over it, since late entry and repeated years are common in the countryside.
AGE_BELOW_GRADE = 5
AGE_ABOVE_GRADE = 8
# 民法典 Art. 17: 18 is full age; only someone with full capacity can be a guardian (Art. 27).
GUARDIAN_MIN_AGE = 18


def normalise_student(data: Mapping[str, Any]) -> dict[str, Any]:
    """Clean typed input without judging it; idempotent, and unknown keys pass through unchanged.

    Strings are trimmed (blank becomes None); the ID number loses spaces and full-width characters
    and a 15-digit resident ID is upgraded to 18; dates become YYYY-MM-DD and months YYYY-MM;
    grade becomes an int, height and weight floats, the yes/no fields bools, when they are
    recognisably so. Anything else is left as it came, for `check_student` to report.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, str):
            value = value.strip() or None
        out[key] = value
    for field in _WIDTH_NORMALISED:
        if isinstance(out.get(field), str):
            out[field] = unicodedata.normalize("NFKC", out[field]).strip() or None
    for field in (*CODE_FIELDS, "hukou_area"):
        if isinstance(out.get(field), int) and not isinstance(out[field], bool):
            out[field] = str(out[field])
    if isinstance(out.get("id_type"), str):
        out["id_type"] = out["id_type"].upper()
    for field in ("id_number", "student_number"):
        if isinstance(out.get(field), str):
            out[field] = normalise_id_number(out[field]) or None
    number = out.get("id_number")
    if out.get("id_type") == RESIDENT_ID and isinstance(number, str) and len(number) == 15 and number.isascii() \
            and number.isdigit():
        out["id_number"] = upgrade_15(number)
    if isinstance(out.get("national_student_number"), str):
        out["national_student_number"] = normalise_national_student_number(out["national_student_number"]) or None
    if isinstance(out.get("guardian_phone"), str):
        out["guardian_phone"] = _normalise_phone(out["guardian_phone"])
    out["birth_date"] = _normalise_date(out.get("birth_date"))
    out["enrolled_month"] = _normalise_month(out.get("enrolled_month"))
    if isinstance(out.get("grade"), str) and out["grade"].isascii() and out["grade"].isdigit():
        out["grade"] = int(out["grade"])
    for field in _NUMBER_FIELDS:
        out[field] = _normalise_number(out.get(field))
    for field in _BOOL_FIELDS:
        out[field] = _normalise_bool(out.get(field))
    return {key: value for key, value in out.items() if key in data or value is not None}


def check_student(data: Mapping[str, Any], *, today: date, codes: CodeTables) -> list[Finding]:
    """Every finding on the record, errors and warnings, grouped by rule. Normalises first."""
    if isinstance(today, datetime):
        today = today.date()
    s = normalise_student(data)
    out: list[Finding] = []
    skip: set[str] = set()  # fields already reported missing or mistyped: no follow-on findings

    for field in REQUIRED_FIELDS:
        if s.get(field) is None:
            out.append(_error(field, "required", msg("必填")))
            skip.add(field)
    for field in _TEXT_FIELDS:
        if field not in skip and s.get(field) is not None and not isinstance(s[field], str):
            out.append(_error(field, "type", msg("应为文本")))
            skip.add(field)

    for field, limit in MAX_LENGTHS.items():
        if _present(s, field, skip) and len(s[field]) > limit:
            out.append(_error(field, "too_long", msg("不能超过 {limit} 个字（现为 {length} 个）",
                                                     limit=limit, length=len(s[field]))))
            skip.add(field)

    for field in ("name", "former_name"):
        if _present(s, field, skip) and _LATIN_OR_DIGIT.search(unicodedata.normalize("NFKC", s[field])):
            out.append(_warning(field, "latin_or_digit", msg("“{value}”含有数字或拉丁字母，请核对", value=s[field])))

    for field in CODE_FIELDS:
        if _present(s, field, skip) and not codes.contains(field, s[field]):
            out.append(_error(field, "unknown_code", msg("“{value}”不是有效的代码", value=s[field])))
            skip.add(field)

    birth = _check_birth_date(s, skip, today, out)
    parsed = _check_id_number(s, skip, codes, out)
    guardian_id = parsed is not None and _check_id_holder(s, skip, parsed, birth, today, codes, out)

    if _present(s, "hukou_area", skip):
        if not _AREA_CODE.fullmatch(s["hukou_area"]):
            out.append(_error("hukou_area", "format", msg("应为 6 位行政区划代码")))
        elif (table := _unknown_area(codes, s["hukou_area"])) is not None:
            out.append(_warning("hukou_area", "unknown_area", msg("{hukou_area} 不在{table}中，请核对",
                                                                  hukou_area=s['hukou_area'], table=table)))
        elif (current := _current_area(codes, s["hukou_area"])) is not None:
            # 户籍所在地 is where the 户口 is now, so unlike an ID number it should carry today's code.
            former = codes.label(AREA_TABLE, s["hukou_area"])
            now = codes.label(AREA_TABLE, current)
            out.append(_warning("hukou_area", "former_area",
                                msg("{hukou_area} {former}已撤销或更名，现行代码为 {current} {now}，请核对",
                                    hukou_area=s['hukou_area'], former=former, current=current, now=now)))

    if _present(s, "school_code", skip) and not _SCHOOL_CODE.fullmatch(s["school_code"]):
        out.append(_error("school_code", "format", msg("应为 10 位数字的学校标识码")))

    grade = _check_grade(s, skip, out)
    if birth is not None and grade is not None:
        _check_age_for_grade(birth, grade, today, out)

    _check_enrolled_month(s, skip, birth, today, out)

    if s.get("boarding_allowance") is True and s.get("boarding_mode") == DAY_STUDENT and "boarding_mode" not in skip:
        # A warning, not an error: a county may pay 一补 to day pupils too (a rate of its own,
        # registry/subsidy.py); where it does not, the month lines say so and pay nothing.
        out.append(_warning("boarding_allowance", "day_student",
                            msg("一补一般只补助寄宿生；走读生只有本县对走读生发放一补时才享受，否则不计一补")))

    for field in _NUMBER_FIELDS:
        _check_measure(s, field, out)
    for field in _BOOL_FIELDS:
        if s.get(field) is not None and not isinstance(s[field], bool):
            out.append(_error(field, "type", msg("应为“是”或“否”")))

    if _present(s, "guardian_phone", skip):
        phone = s["guardian_phone"]
        if not (_MOBILE.fullmatch(phone) or _LANDLINE.fullmatch(phone)):
            out.append(_error("guardian_phone", "format", msg("“{phone}”不是手机号或带区号的固定电话（如 0851-8123456）", phone=phone)))

    if _present(s, "national_student_number", skip):
        found = validate_national_student_number(s["national_student_number"])
        out.extend(found)
        number = s["national_student_number"]
        if not found and guardian_id and number.startswith("G"):
            # A G number is G + the student's own ID: a child registered under a guardian's has a J or L one.
            out.append(_warning("national_student_number", "guardian_id",
                                msg("G 字头学籍号由学生本人身份证号构成，以监护人身份证号登记的学生应为 J 或 L 字头，请核对")))
        elif not found and parsed is not None and number.startswith("G") and number[1:] != parsed.number:
            out.append(_warning("national_student_number", "id_mismatch", msg("G 字头学籍号与身份证件号不一致，请核对")))
    return out


def _check_birth_date(s: dict[str, Any], skip: set[str], today: date, out: list[Finding]) -> date | None:
    if not _present(s, "birth_date", skip):
        return None
    birth = _iso_date(s["birth_date"])
    if birth is None:
        out.append(_error("birth_date", "invalid_date", msg("“{birth_date}”不是有效日期（应为 YYYY-MM-DD）",
                                                            birth_date=s['birth_date'])))
        return None
    if birth > today:
        out.append(_error("birth_date", "future", msg("不能晚于今天")))
        return None
    return birth


def _check_id_number(s: dict[str, Any], skip: set[str], codes: CodeTables, out: list[Finding]) -> ParsedId | None:
    # Only a resident ID has a checkable structure; passports and the like are taken as typed.
    if s.get("id_type") != RESIDENT_ID or "id_type" in skip or not _present(s, "id_number", skip):
        return None
    try:
        parsed = parse_id_number(s["id_number"])
    except InvalidIdNumber as exc:
        out.append(_error("id_number", exc.code, exc.detail))
        return None
    # Never an error: abolished counties' codes stay on old IDs (so former codes are fine here), and
    # late 户口 registration is common.
    if (table := _unknown_area(codes, parsed.area)) is not None:
        out.append(_warning("id_number", "unknown_area", msg("地区码 {area} 不在{table}中，请核对",
                                                             area=parsed.area, table=table)))
    return parsed


def _check_id_holder(s: dict[str, Any], skip: set[str], parsed: ParsedId, birth: date | None, today: date,
                     codes: CodeTables, out: list[Finding]) -> bool:
    """Sex and birth date against the ID (see the module docstring); True when it is read as a guardian's."""
    aux = s["student_number_aux"] if isinstance(s.get("student_number_aux"), str) else None
    holder_born = parsed.birth_date.isoformat()
    other_person = birth is not None and birth != parsed.birth_date
    doubt = _guardian_doubt(parsed.birth_date, birth, today) if other_person and birth is not None else None
    if other_person and aux is not None and doubt is None:
        out.append(_warning("id_number", "guardian_id", msg("持有人出生于 {holder_born}，不是学生本人；按监护人身份证号作学籍主号登记（学籍辅号 {aux}），请核对",
                                                            holder_born=holder_born, aux=aux)))
        return True
    if birth is None and aux is not None:
        return False  # whose number it is cannot be told without the birth date, which is reported already
    if _present(s, "sex", skip) and s["sex"] != parsed.sex:
        shown = msg(codes.label("sex", parsed.sex) or parsed.sex)
        out.append(_error("sex", "id_mismatch", msg("与身份证件号不符（身份证件号显示为{shown}）", shown=shown)))
    if other_person:
        if aux is not None:
            hint = msg("；{doubt}，也不可能是监护人的身份证号", doubt=doubt)
        elif doubt is None:
            hint = msg("；如这是监护人的身份证号（学生本人无身份证），请填写学籍辅号")
        else:
            hint = ""
        out.append(_error("birth_date", "id_mismatch", msg("与身份证件号中的出生日期 {holder_born} 不符{hint}",
                                                           holder_born=holder_born, hint=hint)))
    return False


def _guardian_doubt(holder_born: date, student_born: date, today: date) -> str | None:
    """Why the holder of an ID cannot be the student's guardian, or None when they can be."""
    if holder_born >= student_born:
        return msg("证件持有人不比学生年长")
    if _age(holder_born, today) < GUARDIAN_MIN_AGE:
        return msg("证件持有人未满 {age} 周岁", age=GUARDIAN_MIN_AGE)
    return None


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _unknown_area(codes: CodeTables, area: str) -> str | None:
    """The table an unknown area code should have been in ("贵州省行政区划代码表"), or None when
    there is nothing to say: the code is known, or it belongs to a province the table does not
    cover. The shipped table covers Guizhou only, and a migrant child (随迁子女) from another
    province is no data error."""
    if AREA_TABLE not in codes.names() or codes.contains(AREA_TABLE, area):
        return None
    province = area[:2]
    if not any(item.code.startswith(province) for item in codes.table(AREA_TABLE)):
        return None
    name = codes.label(AREA_TABLE, f"{province}0000")
    return msg("{name}行政区划代码表", name=name) if name is not None else msg("行政区划代码表")


def _current_area(codes: CodeTables, area: str) -> str | None:
    return codes.replacement(AREA_TABLE, area) if AREA_TABLE in codes.names() else None


def _check_grade(s: dict[str, Any], skip: set[str], out: list[Finding]) -> int | None:
    if "grade" in skip or s.get("grade") is None:
        return None
    grade = s["grade"]
    if isinstance(grade, bool) or not isinstance(grade, int) or not 1 <= grade <= 9:
        out.append(_error("grade", "invalid", msg("“{grade}”无效：义务教育年级应为 1 至 9", grade=grade)))
        return None
    return grade


def _check_age_for_grade(birth: date, grade: int, today: date, out: list[Finding]) -> None:
    # The age that matters is the one at the start of the current school year, the year in which
    # the student is in this grade (counting from the enrolment year would flag every older
    # student on a school's initial load).
    year = today.year if today.month >= 9 else today.year - 1
    age = year - birth.year - ((9, 1) < (birth.month, birth.day))
    low, high = grade + AGE_BELOW_GRADE, grade + AGE_ABOVE_GRADE
    if not low <= age <= high:
        detail = f"{grade} 年级学生在 {year} 年 9 月 1 日通常为 {low}–{high} 岁，该生为 {age} 岁，请核对年级和出生日期"
        out.append(_warning("grade", "age_for_grade", detail))


def _check_enrolled_month(s: dict[str, Any], skip: set[str], birth: date | None, today: date,
                          out: list[Finding]) -> None:
    if not _present(s, "enrolled_month", skip):
        return
    match = _ISO_MONTH.fullmatch(s["enrolled_month"])
    if match is None or not 1 <= int(match[2]) <= 12:
        out.append(_error("enrolled_month", "invalid_month", msg("“{enrolled_month}”不是有效年月（应为 YYYY-MM）",
                                                                 enrolled_month=s['enrolled_month'])))
        return
    month = (int(match[1]), int(match[2]))
    if month > (today.year, today.month):
        out.append(_error("enrolled_month", "future", msg("不能晚于本月")))
    elif birth is not None and month < (birth.year, birth.month):
        out.append(_error("enrolled_month", "before_birth", msg("早于出生日期")))


def _check_measure(s: dict[str, Any], field: str, out: list[Finding]) -> None:
    value = s.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.append(_error(field, "type", msg("“{value}”不是数字", value=value)))
        return
    low, high = HEIGHT_CM if field == "height_cm" else WEIGHT_KG
    if not low <= value <= high:
        unit = "厘米" if field == "height_cm" else "千克"
        detail = f"{value:g} {unit}超出常见范围 {low:g}–{high:g} {unit}，请核对单位和数值"
        out.append(_warning(field, "implausible", detail))


def _present(s: dict[str, Any], field: str, skip: set[str]) -> bool:
    return field not in skip and s.get(field) is not None


def _error(field: str, code: str, detail: str) -> Finding:
    return error(field, FIELD_LABELS[field], code, detail)


def _warning(field: str, code: str, detail: str) -> Finding:
    return warning(field, FIELD_LABELS[field], code, detail)


def _iso_date(value: str) -> date | None:
    # date.fromisoformat alone also takes "20120304" and week dates; the contract is YYYY-MM-DD.
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _normalise_date(value: Any) -> Any:
    # Spreadsheet readers hand date cells over as datetimes at midnight.
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and (match := _DATE.fullmatch(value)):
        y, m, d = (g for g in match.groups() if g is not None)
        return f"{y}-{int(m):02d}-{int(d):02d}"
    return value


def _normalise_month(value: Any) -> Any:
    if isinstance(value, str) and (match := _MONTH.fullmatch(value)):
        y, m = (g for g in match.groups() if g is not None)
        return f"{y}-{int(m):02d}"
    return value


def _normalise_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        # float() also accepts "nan" and "inf", which no measurement is.
        return number if math.isfinite(number) else value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _normalise_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return value


def _normalise_phone(value: str) -> str | None:
    phone = "".join(unicodedata.normalize("NFKC", value).split())
    for dash in ("—", "–", "－", "‐"):
        phone = phone.replace(dash, "-")
    phone = phone.strip("-")
    if not phone:
        return None
    bare = phone.replace("-", "")
    # Mobiles are often written 138-1234-5678 or with the country code; store the 11 digits.
    for prefix in ("+86", "0086", "86"):
        if bare.startswith(prefix) and _MOBILE.fullmatch(bare[len(prefix):]):
            return bare[len(prefix):]
    if _MOBILE.fullmatch(bare):
        return bare
    return phone
