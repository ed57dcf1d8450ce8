"""Enrolment periods carry the grade, class, boarding mode and 一补 their months count with: a change from
a month on splits the period there, and the figures of the months before stay as they were reported."""

from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

import migrations
from registry import reports, rosters, students, subsidy
from registry.audit import AuditEntry
from registry.students import EnrolmentPeriod, restate_periods
from tests import subsidy_county as fixture
from tests.subsidy_county import SCHOOL_A

TODAY = date(2026, 11, 29)


def _periods(session: Session, student_id: int) -> list[tuple]:
    return [(p.from_month, p.to_month, p.grade, p.class_name, p.boarding_mode, p.boarding_allowance)
            for p in session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student_id)
                                     .order_by(EnrolmentPeriod.from_month))]


def _class_of(session: Session, county: fixture.County, name: str, month: int) -> str:
    roster = rosters.roster(session, actor=county.users["reg_a"], school_code=SCHOOL_A, year=2024, month=month,
                            medium="html", today=TODAY)
    return next(row.class_label for row in roster.rows if row.name == name)


def test_a_class_correction_counts_from_its_month(session: Session) -> None:
    county = fixture.build(session)
    s1 = county.pupils["s1"]
    students.update_student(session, actor=county.users["reg_a"], student_id=s1.id,
                            changes={"class_name": "三年级（2）班"}, today=date(2025, 4, 10), reason="分班调整")
    assert _periods(session, s1.id) == [("2022-09", "2025-03", 3, "三年级（1）班", "1", False),
                                        ("2025-04", None, 3, "三年级（2）班", "1", False)]
    # The roster of March, printed again, is the one the guardians signed; April's has the new class.
    assert _class_of(session, county, "甲一", 3) == "三年级（1）班"
    assert _class_of(session, county, "甲一", 4) == "三年级（2）班"
    march = reports.school_report(session, actor=county.users["reg_a"], school_code=SCHOOL_A, year=2025, month=3)
    april = reports.school_report(session, actor=county.users["reg_a"], school_code=SCHOOL_A, year=2025, month=4)
    assert (3, "三年级（1）班") in {c[1:] for c in march.schools[0].tally.classes}
    assert (3, "三年级（2）班") in {c[1:] for c in april.schools[0].tally.classes}
    assert (3, "三年级（1）班") not in {c[1:] for c in april.schools[0].tally.classes}
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.update",
                                                     AuditEntry.object_id == str(s1.id))).one()
    assert [p["to_month"] for p in entry.before["enrolment_periods"]] == [None]
    assert [(p["from_month"], p["to_month"], p["class_name"]) for p in entry.after["enrolment_periods"]] == [
        ("2022-09", "2025-03", "三年级（1）班"), ("2025-04", None, "三年级（2）班")]
    # A second correction in the same month changes that month's period, it does not split again.
    students.update_student(session, actor=county.users["reg_a"], student_id=s1.id,
                            changes={"class_name": "三年级（3）班"}, today=date(2025, 4, 20), reason="再调")
    assert _periods(session, s1.id)[1:] == [("2025-04", None, 3, "三年级（3）班", "1", False)]
    # The money does not depend on the class: the year is paid as before.
    explained = subsidy.explain(session, s1, year=2024, today=TODAY)
    assert explained.meal_total == Decimal("1100.00") and not explained.overlaps


def test_an_allowance_ended_from_a_month_keeps_the_months_before(session: Session) -> None:
    county = fixture.build(session)
    s2 = county.pupils["s2"]  # a boarder with 一补, suspended 2024-11, resumed 2025-03 (a second period)
    s2.boarding_allowance = False
    changed = restate_periods(session, s2, "2025-05")
    assert changed is not None
    assert _periods(session, s2.id) == [("2020-09", "2024-10", 5, "五年级（1）班", "2", True),
                                        ("2025-03", "2025-04", 5, "五年级（1）班", "2", True),
                                        ("2025-05", None, 5, "五年级（1）班", "2", False)]
    explained = subsidy.explain(session, s2, year=2024, today=TODAY)
    by_month = {line.month: line.allowance_amount for line in explained.lines}
    assert [by_month[m] for m in ("2024-09", "2024-10", "2025-03", "2025-04")] == [Decimal("100.00")] * 4
    assert by_month["2025-05"] == by_month["2025-06"] == by_month["2025-07"] == 0
    assert explained.allowance_total == Decimal("400.00") and explained.meal_total == Decimal("800.00")
    reviewer = county.users["reviewer"]
    year = reports.county_report(session, actor=reviewer, year=2024).county_json()["totals"]
    assert year["boarding_allowance_total"] == 1825.0 - 300.0  # the fixture's hand count less May–July
    assert year["boarding_allowance"] == 2  # s2 still had 一补 in the year
    april = reports.school_report(session, actor=reviewer, school_code=SCHOOL_A, year=2025, month=4).school_json()
    may = reports.school_report(session, actor=reviewer, school_code=SCHOOL_A, year=2025, month=5).school_json()
    assert (april["boarding_allowance"], april["boarding_allowance_total"]) == (1, 100.0)
    assert (may["boarding_allowance"], may["boarding_allowance_total"]) == (0, 0.0)
    assert (may["boarders"], may["beneficiaries"]) == (1, april["beneficiaries"])
    # Restating again from the same month, or with nothing changed, writes nothing more.
    assert restate_periods(session, s2, "2025-05") is None
    assert len(_periods(session, s2.id)) == 3


def test_a_change_from_before_a_period_starts_takes_the_whole_period(session: Session) -> None:
    county = fixture.build(session)
    s6 = county.pupils["s6"]  # entered 2025-03: one period
    s6.grade = 2
    restate_periods(session, s6, "2024-12")
    assert _periods(session, s6.id) == [("2025-03", None, 2, "一年级（1）班", "1", True)]
    # An empty period (closed in its own first month) is no month at all and is left alone.
    s4 = county.pupils["s4"]  # graduated from 2025-07: its one period ends 2025-06
    s4.boarding_mode = "1"
    assert restate_periods(session, s4, "2025-07") is None
    assert _periods(session, s4.id)[-1][:2] == ("2022-09", "2025-06")


def test_the_migration_gives_existing_periods_the_record_values(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrations.upgrade(url, "0015")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO org_unit (id, code, name, kind, path) VALUES (1, '5299', '县', 'school', '/1/')"))
        conn.execute(text(
            "INSERT INTO student (id, school_id, status, name, sex, birth_date, id_type, id_number, ethnicity, grade,"
            " class_name, enrolled_month, boarding_mode, migrant_child, boarding_allowance, created_at)"
            " VALUES (7, 1, 'active', '旧生', '1', '2015-01-01', '1', '1', '01', 8, '八年级（2）班', '2023-09', '2',"
            " 0, 1, '2024-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO enrolment_period (student_id, school_id, from_month) VALUES (7, 1, '2023-09')"))
    migrations.upgrade(url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT grade, class_name, boarding_mode, boarding_allowance FROM enrolment_period"))
        assert row.one() == (8, "八年级（2）班", "2", 1)
    engine.dispose()


def test_a_voided_record_counts_for_no_month(session: Session) -> None:
    county = fixture.build(session)
    reviewer = county.users["reviewer"]
    students.void_active(session, actor=reviewer, student_id=county.pupils["s1"].id, reason="重复建档")
    figures = reports.school_report(session, actor=reviewer, school_code=SCHOOL_A, year=2024).school_json()
    # The fixture's hand count for school A less 甲一 (1100 元 of meal subsidy).
    assert (figures["students_total"], figures["beneficiaries"], figures["subsidy_total"]) == (3, 3, 1800.0)
