"""The demo's pupils (`mealroll up`): valid, confirmed, counted by the reports."""

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import demo, reports
from registry.rules.id_number import check_digit
from registry.students import Student, StudentStatus
from tests.factories import user

TODAY = date(2026, 11, 29)


def test_demo_pupils_are_confirmed_and_show_in_the_county_report(session: Session) -> None:
    before = session.scalar(select(func.count()).select_from(Student)) or 0
    made = demo.seed_demo_students(session, today=TODAY, per_class=3)
    assert made == 3 * (6 * 2 + 3 * 2 + 6 * 2 + 6 * 1)
    pupils = session.scalars(select(Student).order_by(Student.id.desc()).limit(made)).all()
    assert {p.status for p in pupils} == {StudentStatus.active}
    assert all(p.id_number[17] == check_digit(p.id_number[:17]) for p in pupils)
    assert all(len(p.periods) == 1 and p.periods[0].to_month is None for p in pupils)
    assert {p.class_name for p in pupils if p.grade == 7} == {"七年级（1）班", "七年级（2）班"}
    report = reports.county_report(session, actor=user(session, "reviewer"), year=2026, month=11).county_json()
    assert report["totals"]["beneficiaries"] >= made and (session.scalar(select(func.count()).select_from(Student))
                                                          == before + made)
