"""The demo county seeded on first start: 1 county, 2 townships, 4 schools, a user for every role."""

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.org_units import OrgKind, OrgUnit, create_org_unit
from registry.schools import create_school
from registry.users import Role, create_user, grant_role

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
