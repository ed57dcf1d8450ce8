"""Plain functions that build test data."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry.rules.id_number import check_digit
from registry.users import User, find_user

SCHOOL_1 = "2152019901"
SCHOOL_2 = "2152019902"
SCHOOL_3 = "2152019903"


def make_id_number(*, area: str = "520102", birth: date = date(2017, 3, 14), seq: int = 123) -> str:
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


def student_data(*, seq: int = 123, birth: date = date(2017, 3, 14), school_code: str = SCHOOL_1,
                 **overrides: Any) -> dict[str, Any]:
    """A valid grade-3 student; the sex follows the ID's sequence number (odd = male)."""
    data: dict[str, Any] = {
        "name": "张小明",
        "sex": "1" if seq % 2 else "2",
        "birth_date": birth.isoformat(),
        "id_type": "1",
        "id_number": make_id_number(birth=birth, seq=seq),
        "ethnicity": "06",
        "school_code": school_code,
        "grade": 3,
        "class_name": "三年级（1）班",
        "enrolled_month": "2023-09",
        "boarding_mode": "1",
        "guardian_name": "张大山",
        "guardian_phone": "13800001234",
    }
    data.update(overrides)
    return data


def user(session: Session, username: str) -> User:
    found = find_user(session, username=username)
    assert found is not None, username
    return found
