"""A county of its own with hand-computed subsidy figures for school year 2024 (2024-09 … 2025-08).

Default calendar: 20 school days in Sep–Jan and Mar–Jul, none in February and August. The national
meal rate is 5.00 元/天 all year; the county adds a 1.00 元/天 top-up from 2025-03 (a rate change inside
the period). School A (primary, meal model 1), school B (九年一贯制, meal model 2, changed to 4 from
2025-03), school C (教学点, serves no meals). Pupils, all through the real services:
  s1  A, grade 3, day pupil, the whole year:             Sep–Jan 5×20×5 = 500, Mar–Jul 5×20×6 = 600 → 1100
  s2  A, grade 5, boarder with 一补, left-behind; suspended from 2024-11, resumed 2025-03:
      meal Sep–Oct 200 + Mar–Jul 600 = 800; 一补 4×250/10 = 100 a month × 7 = 700
  s3  A, grade 4, migrant child; transferred to B from 2025-01:  A Sep–Dec 400; B Jan 100 (model 2)
      + Mar–Jul 600 (model 4) = 700
  s4  B, grade 9, boarder with 一补; graduated from 2025-07: meal Sep–Jan 500 + Mar–Jun 480 = 980;
      一补 5×250/10 = 125 a month × 9 = 1125
  s5  C, grade 1: on the roll, no meals, no subsidy
  s6  A, grade 1, a day pupil with the 一补 flag, entered 2025-03: Mar–Jul 600; no 一补, since the county
      pays none to day pupils (not counted as 享受一补)
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from random import randint

from sqlalchemy.orm import Session

from registry import schools, students
from registry.org_units import OrgKind, OrgUnit, create_org_unit
from registry.student_status import change_status
from registry.students import Student
from registry.subsidy import set_county_rate
from registry.transfers import move_within_county
from registry.users import Role, User, create_user, grant_role
from tests.conftest import DEMO_PASSWORD
from tests.factories import student_data

COUNTY, TOWNSHIP = "529901", "529901101"
SCHOOL_A, SCHOOL_B, SCHOOL_C = "5299010001", "5299010002", "5299010003"


@dataclass
class County:
    county: OrgUnit
    users: dict[str, User]
    pupils: dict[str, Student]


def _user(session: Session, username: str, role: Role, code: str) -> User:
    made = create_user(session, username=username, display_name=f"补助测试 {username}", password=DEMO_PASSWORD)
    grant_role(session, user=made, role=role, org_unit_code=code)
    return made


def _pupil(session: Session, registrar: User, reviewer: User, *, school: str, enrolled: str, **fields: object) -> Student:
    birth = date(2014, 1, 1 + randint(0, 27))
    data = student_data(seq=randint(100, 999), birth=birth, school_code=school, enrolled_month=enrolled, **fields)
    student, _ = students.register_pending(session, actor=registrar, data=data, today=date(2025, 9, 1))
    students.activate(session, student_id=student.id, actor=reviewer, now=datetime(2024, 9, 2, tzinfo=UTC))
    session.refresh(student)
    return student


def build(session: Session, *, county_code: str = COUNTY, tag: str = "subsidy") -> County:
    """The county; another `county_code` and `tag` (for usernames) give a second, independent copy."""
    school_a, school_b, school_c = (f"{county_code}000{n}" for n in (1, 2, 3))
    county = create_org_unit(session, code=county_code, name="补助测试县", kind=OrgKind.county)
    township = create_org_unit(session, code=f"{county_code}101", name="补助测试镇", kind=OrgKind.township,
                               parent=county)
    for code, name, school_type, meal_model in ((school_a, "测试甲小学", "211", "1"),
                                                 (school_b, "测试乙学校", "312", "2"),
                                                 (school_c, "测试丙教学点", "218", None)):
        unit = create_org_unit(session, code=code, name=name, kind=OrgKind.school, parent=township)
        schools.create_school(session, unit=unit, data={"sponsor_type": "811", "school_type": school_type,
                                                        "urban_rural": "220", "meal_model": meal_model,
                                                        "subsidy_rate": "5.00"})
    users = {
        "reg_a": _user(session, f"{tag}_reg_a", Role.school_registrar, school_a),
        "reg_b": _user(session, f"{tag}_reg_b", Role.school_registrar, school_b),
        "reg_c": _user(session, f"{tag}_reg_c", Role.school_registrar, school_c),
        "reviewer": _user(session, f"{tag}_reviewer", Role.county_reviewer, county_code),
        "admin": _user(session, f"{tag}_admin", Role.county_admin, county_code),
        "township": _user(session, f"{tag}_township", Role.township_officer, township.code),
    }
    reviewer = users["reviewer"]
    pupils = {
        "s1": _pupil(session, users["reg_a"], reviewer, school=school_a, enrolled="2022-09", name="甲一",
                     grade=3, class_name="三年级（1）班"),
        "s2": _pupil(session, users["reg_a"], reviewer, school=school_a, enrolled="2020-09", name="甲二",
                     grade=5, class_name="五年级（1）班", boarding_mode="2", boarding_allowance=True,
                     left_behind="2"),
        "s3": _pupil(session, users["reg_a"], reviewer, school=school_a, enrolled="2021-09", name="甲三",
                     grade=4, class_name="四年级（2）班", migrant_child=True),
        "s4": _pupil(session, users["reg_b"], reviewer, school=school_b, enrolled="2022-09", name="乙四",
                     grade=9, class_name="九年级（1）班", boarding_mode="2", boarding_allowance=True),
        "s5": _pupil(session, users["reg_c"], reviewer, school=school_c, enrolled="2024-09", name="丙五",
                     grade=1, class_name="一年级（1）班"),
        "s6": _pupil(session, users["reg_a"], reviewer, school=school_a, enrolled="2025-03", name="甲六",
                     grade=1, class_name="一年级（1）班", boarding_allowance=True),
    }
    change_status(session, student_id=pupils["s2"].id, to_status="suspended", effective_month="2024-11",
                  reason="因病休学", actor=reviewer)
    change_status(session, student_id=pupils["s2"].id, to_status="active", effective_month="2025-03",
                  reason="病愈复学", actor=reviewer)
    move_within_county(session, student_id=pupils["s3"].id, to_school_code=school_b, change_month="2025-01",
                       actor=reviewer)
    change_status(session, student_id=pupils["s4"].id, to_status="graduated", effective_month="2025-07",
                  reason="初中毕业", actor=reviewer)
    schools.update_school(session, actor=users["admin"], code=school_b, changes={"meal_model": "4"},
                          meal_model_from="2025-03")
    set_county_rate(session, actor=users["admin"], county=county, kind="topup", effective_month="2025-03",
                    per_day="1.00", days_per_year=200, note="县级配套")
    for pupil in pupils.values():
        session.refresh(pupil)
    return County(county, users, pupils)
