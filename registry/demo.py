"""The demo county seeded on first start: 1 county, 2 townships, 4 schools, a user for every role, and
(for `mealroll up`) a few hundred confirmed pupils."""

import random
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import utcnow
from registry.org_units import OrgKind, OrgUnit, create_org_unit
from registry.rules.id_number import check_digit
from registry.schools import create_school
from registry.students import activate, register_pending
from registry.users import Role, create_user, find_user, grant_role

COUNTY = ("520199", "演示县")
TOWNSHIPS = [("520199101", "城关镇"), ("520199201", "新场乡")]
SCHOOLS = [
    # (school code, name, township index, 办学类型, 城乡类别, 供餐模式): codes follow the 10-digit
    # 学校标识码 shape 2152xxxxxx.
    ("2152019901", "城关镇中心小学", 0, "211", "121", "1"),
    ("2152019902", "城关镇第一中学", 0, "311", "121", "1"),
    ("2152019903", "新场乡中心小学", 1, "211", "210", "1"),
    ("2152019904", "新场乡坪上教学点", 1, "218", "220", "3"),
]
USERS = [
    # (username, display name, role, org unit code) — names binding, see DESIGN.md "Demo county".
    ("registrar1", "李学籍（城关小学）", Role.school_registrar, "2152019901"),
    ("principal1", "王校长（城关小学）", Role.school_principal, "2152019901"),
    ("registrar2", "赵学籍（城关一中）", Role.school_registrar, "2152019902"),
    ("principal2", "陈校长（城关一中）", Role.school_principal, "2152019902"),
    ("township1", "刘主任（城关镇中心校）", Role.township_officer, "520199101"),
    ("reviewer", "张审核（县营养办）", Role.county_reviewer, "520199"),
    ("aidcenter", "杨主任（县资助中心）", Role.county_aid_center, "520199"),
    ("admin", "系统管理员（县教育局）", Role.county_admin, "520199"),
    ("processadmin", "流程管理员（县教育局）", Role.process_admin, "520199"),
    ("auditor", "周督查（县督导室）", Role.auditor, "520199"),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    display_name: str
    role: str
    org_unit: str
    password: str


def is_empty(session: Session) -> bool:
    return session.scalar(select(OrgUnit.id).limit(1)) is None


def seed_demo_county(session: Session, *, password: str | None = None) -> list[DemoLogin]:
    county = create_org_unit(session, code=COUNTY[0], name=COUNTY[1], kind=OrgKind.county)
    townships = [create_org_unit(session, code=c, name=n, kind=OrgKind.township, parent=county) for c, n in TOWNSHIPS]
    for number, (code, name, township, school_type, urban_rural, meal_model) in enumerate(SCHOOLS, start=1):
        unit = create_org_unit(session, code=code, name=name, kind=OrgKind.school, parent=townships[township])
        create_school(session, unit=unit, data={
            "sponsor_type": "811", "school_type": school_type, "urban_rural": urban_rural, "meal_model": meal_model,
            "subsidy_rate": "5.00", "address": f"演示县{TOWNSHIPS[township][1]}", "postcode": "556000",
            "phone": f"0855-88800{number:02d}", "principal_name": f"校长{number}",
            "principal_mobile": f"1380000{number:04d}"})
    logins = []
    for username, display_name, role, unit in USERS:
        secret = password or secrets.token_urlsafe(9)
        user = create_user(session, username=username, display_name=display_name, password=secret)
        grant_role(session, user=user, role=role, org_unit_code=unit)
        logins.append(DemoLogin(username, display_name, role, unit, secret))
    return logins


# The demo's pupils (`mealroll up` only; the tests seed the county without them): a few classes per
# school, so that reports, the dashboard and the roster show something on a fresh start.
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何罗高林"
_GIVEN = ["子涵", "欣怡", "浩然", "梓萱", "宇轩", "思雨", "俊杰", "雨桐", "明轩", "诗琪", "天佑", "可馨", "家豪",
          "佳怡", "志强", "晓雪", "文博", "婷婷", "建国", "丽娟"]
_GRADE_NAMES = "一二三四五六七八九"


def seed_demo_students(session: Session, *, today: date, per_class: int = 12) -> int:
    """Confirmed pupils in every demo school: two classes a grade (one at the 教学点), ID numbers valid
    (GB 11643), birth dates that fit the grade, some boarders with 一补, left-behind and migrant children.
    Deterministic: the same county on every fresh start of the same school year."""
    rng = random.Random(2026)
    year = today.year if today.month >= 9 else today.year - 1  # the running school year
    reviewer = find_user(session, username="reviewer")
    count = 0
    for code, _name, _township, school_type, _urban, _meal in SCHOOLS:
        grades = range(7, 10) if school_type == "311" else range(1, 7)
        classes = 1 if school_type == "218" else 2
        for grade in grades:
            for klass in range(1, classes + 1):
                for _ in range(per_class):
                    student = _demo_pupil(rng, code=code, grade=grade, klass=klass, year=year, seq=count)
                    pupil, _warnings = register_pending(session, actor=reviewer, data=student, today=today)
                    activate(session, student_id=pupil.id, actor=reviewer, now=utcnow())
                    count += 1
    return count


def _demo_pupil(rng: random.Random, *, code: str, grade: int, klass: int, year: int, seq: int) -> dict:
    born = date(year - 6 - grade, 9, 2) + timedelta(days=rng.randrange(365))  # 6 on 1 September in grade 1
    number = f"520102{born:%Y%m%d}{100 + seq % 900:03d}"
    number += check_digit(number)
    boarder = grade >= 4 and rng.random() < 0.4
    left_behind = rng.choices(["0", "1", "2"], weights=[7, 2, 1])[0]
    entered = year - (grade - 7 if grade >= 7 else grade - 1)
    return {
        "name": rng.choice(_SURNAMES) + rng.choice(_GIVEN), "sex": "1" if int(number[16]) % 2 else "2",
        "birth_date": born.isoformat(), "id_type": "1", "id_number": number, "ethnicity": rng.choice(["01", "03", "06"]),
        "school_code": code, "grade": grade, "class_name": f"{_GRADE_NAMES[grade - 1]}年级（{klass}）班",
        "enrolled_month": f"{entered}-09", "boarding_mode": "2" if boarder else "1",
        "boarding_allowance": boarder and rng.random() < 0.5, "left_behind": left_behind,
        "migrant_child": left_behind == "0" and rng.random() < 0.05,
        "guardian_name": rng.choice(_SURNAMES) + rng.choice(_GIVEN), "guardian_phone": f"139{rng.randrange(10**8):08d}",
    }
