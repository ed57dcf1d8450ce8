"""Subsidy and the Art. 12 reports on a real database, every figure against tests/subsidy_county.py's hand count."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import report_submissions, reports, subsidy
from registry.audit import AuditEntry
from registry.errors import NotFound, PermissionDenied, RuleViolation
from registry.students import EnrolmentPeriod, period_values
from registry.subsidy import MealModels, Pupil, RateBook, SubsidyRate, month_line
from tests import subsidy_county as fixture
from tests.subsidy_county import SCHOOL_A, SCHOOL_B, SCHOOL_C

TODAY = date(2026, 11, 29)


@pytest.fixture
def county(session: Session) -> fixture.County:
    return fixture.build(session)


def test_school_a_year_report(session: Session, county: fixture.County) -> None:
    report = reports.school_report(session, actor=county.users["reg_a"], school_code=SCHOOL_A, year=2024)
    figures = report.school_json()
    assert {k: figures[k] for k in reports.FIGURES} == {
        "students_total": 4, "classes": 4, "beneficiaries": 4, "boarders": 1, "boarding_allowance": 1,
        "left_behind": 1, "migrant_children": 1, "subsidy_rate": 6.0, "subsidy_total": 2900.0, "meal_model": "1",
    }
    assert figures["boarding_allowance_total"] == 700.0
    assert figures["period"] == {"year": 2024, "month": None, "first_month": "2024-09", "last_month": "2025-08",
                                 "label": "2024–2025 学年"}
    assert figures["meal_model_label"] == "学校食堂" and figures["school_type"] == "211"


def test_school_b_year_report_with_a_meal_model_change(session: Session, county: fixture.County) -> None:
    figures = reports.school_report(session, actor=county.users["reviewer"], school_code=SCHOOL_B,
                                    year=2024).school_json()
    assert {k: figures[k] for k in reports.FIGURES} == {
        "students_total": 2, "classes": 2, "beneficiaries": 2, "boarders": 1, "boarding_allowance": 1,
        "left_behind": 0, "migrant_children": 1, "subsidy_rate": 6.0, "subsidy_total": 1680.0, "meal_model": "4",
    }
    assert figures["boarding_allowance_total"] == 1125.0


def test_a_school_serving_no_meals_has_pupils_but_no_beneficiaries(session: Session, county: fixture.County) -> None:
    figures = reports.school_report(session, actor=county.users["reg_c"], school_code=SCHOOL_C,
                                    year=2024).school_json()
    assert (figures["students_total"], figures["beneficiaries"], figures["subsidy_total"],
            figures["meal_model"], figures["meal_model_label"]) == (1, 0, 0.0, None, "未供餐")


def test_month_reports_follow_the_transfer_and_the_suspension(session: Session, county: fixture.County) -> None:
    reviewer = county.users["reviewer"]
    january_a = reports.school_report(session, actor=reviewer, school_code=SCHOOL_A, year=2025, month=1).school_json()
    january_b = reports.school_report(session, actor=reviewer, school_code=SCHOOL_B, year=2025, month=1).school_json()
    # s2 is suspended, s3 has moved to B: A pays s1 only; B pays s3 and s4, and 一补 for s4.
    assert (january_a["students_total"], january_a["beneficiaries"], january_a["subsidy_total"]) == (1, 1, 100.0)
    assert (january_b["beneficiaries"], january_b["subsidy_total"], january_b["boarding_allowance_total"],
            january_b["meal_model"], january_b["subsidy_rate"]) == (2, 200.0, 125.0, "2", 5.0)
    december_b = reports.school_report(session, actor=reviewer, school_code=SCHOOL_B, year=2024,
                                       month=12).school_json()
    assert (december_b["beneficiaries"], december_b["subsidy_total"]) == (1, 100.0)
    february = reports.school_report(session, actor=reviewer, school_code=SCHOOL_A, year=2025, month=2).school_json()
    assert (february["beneficiaries"], february["subsidy_total"]) == (1, 0.0)  # no school days in February
    march = reports.school_report(session, actor=reviewer, school_code=SCHOOL_B, year=2025, month=3).school_json()
    assert (march["meal_model"], march["subsidy_rate"], march["subsidy_total"]) == ("4", 6.0, 240.0)


def test_county_report(session: Session, county: fixture.County) -> None:
    report = reports.county_report(session, actor=county.users["reviewer"], year=2024).county_json()
    assert [s["school_code"] for s in report["schools"]] == [SCHOOL_A, SCHOOL_B]  # C serves no meals
    assert report["totals"] == {
        "schools": 2, "students_total": 5, "classes": 6, "beneficiaries": 5, "boarders": 2,
        "boarding_allowance": 2, "left_behind": 1, "migrant_children": 1, "subsidy_total": 4580.0,
        "boarding_allowance_total": 1825.0,
    }
    assert report["by_meal_model"] == {
        "1": {"label": "学校食堂", "schools": 1, "beneficiaries": 4, "subsidy_total": 2900.0},
        "2": {"label": "企业（单位）供餐", "schools": 1, "beneficiaries": 2, "subsidy_total": 600.0},
        "4": {"label": "混合供餐", "schools": 1, "beneficiaries": 2, "subsidy_total": 1080.0},
    }
    assert report["county"]["code"] == fixture.COUNTY


def test_no_month_is_paid_at_two_schools(session: Session, county: fixture.County) -> None:
    reviewer = county.users["reviewer"]
    for year, month in [(2024, m) for m in range(9, 13)] + [(2025, m) for m in range(1, 9)]:
        report = reports.county_report(session, actor=reviewer, year=year, month=month)
        per_school = [len(s.tally.beneficiaries) for s in report.schools]
        assert sum(per_school) == len(report.totals.beneficiaries), (year, month)


@pytest.mark.parametrize("month", [None, *range(1, 13)])
def test_every_report_agrees_with_the_pupils_month_by_month(session: Session, county: fixture.County,
                                                           month: int | None) -> None:
    """The report counts periods by kind; `subsidy.explain` walks each pupil month by month: two paths, one answer."""
    report = reports.county_report(session, actor=county.users["reviewer"], year=2024 if month is None or month >= 9
                                   else 2025, month=month)
    first, last = subsidy.report_months(report.year, month)
    expected: dict[int, reports.Tally] = {}
    for pupil in county.pupils.values():
        for line in subsidy.explain(session, pupil, year=2024, today=TODAY).lines:
            if not first <= line.month <= last:
                continue
            tally = expected.setdefault(line.school_id, reports.Tally())
            tally.students_total.add(pupil.id)
            tally.subsidy_cents += int(line.meal_amount * 100)
            tally.allowance_cents += int(line.allowance_amount * 100)
            if line.allowance_amount > 0:
                tally.boarding_allowance.add(pupil.id)
            if line.beneficiary:
                tally.beneficiaries.add(pupil.id)
                tally.by_meal_model.setdefault(line.meal_model, set()).add(pupil.id)
                tally.cents_by_meal_model[line.meal_model] = (tally.cents_by_meal_model.get(line.meal_model, 0)
                                                              + int(line.meal_amount * 100))
    for school in report.schools:
        got, want = school.tally, expected.get(school.school.org_unit_id, reports.Tally())
        assert (got.students_total, got.beneficiaries, got.boarding_allowance) == (
            want.students_total, want.beneficiaries, want.boarding_allowance), school.school.org_unit.code
        assert (got.subsidy_cents, got.allowance_cents) == (want.subsidy_cents, want.allowance_cents)
        assert (got.by_meal_model, got.cents_by_meal_model) == (want.by_meal_model, want.cents_by_meal_model)
        assert sum(got.month_cents) == got.subsidy_cents
    assert report.schools, "the fixture county has beneficiary schools in every month"


def test_a_township_officer_sees_their_schools_and_a_registrar_only_their_own(
        session: Session, county: fixture.County) -> None:
    township = reports.county_report(session, actor=county.users["township"], year=2024).county_json()
    assert township["totals"]["subsidy_total"] == 4580.0
    own = reports.county_report(session, actor=county.users["reg_a"], year=2024).county_json()
    assert [s["school_code"] for s in own["schools"]] == [SCHOOL_A]
    with pytest.raises(NotFound):
        reports.school_report(session, actor=county.users["reg_a"], school_code=SCHOOL_B, year=2024)


def test_bad_periods_are_refused(session: Session, county: fixture.County) -> None:
    with pytest.raises(RuleViolation, match="月份"):
        reports.school_report(session, actor=county.users["reg_a"], school_code=SCHOOL_A, year=2024, month=13)
    with pytest.raises(RuleViolation, match="年份"):
        reports.school_report(session, actor=county.users["reg_a"], school_code=SCHOOL_A, year=1999)


def test_the_pupils_behind_each_figure(session: Session, county: fixture.County) -> None:
    pupils = county.pupils
    report = reports.county_report(session, actor=county.users["reviewer"], year=2024)
    listed, total = reports.figure_students(session, report, "beneficiaries", school_code=SCHOOL_B)
    assert total == 2 and {s.id for s in listed} == {pupils["s3"].id, pupils["s4"].id}
    listed, total = reports.figure_students(session, report, "boarding_allowance")
    assert {s.id for s in listed} == {pupils["s2"].id, pupils["s4"].id}
    listed, total = reports.figure_students(session, report, "beneficiaries", limit=2, offset=4)
    assert total == 5 and len(listed) == 1
    with pytest.raises(RuleViolation):
        reports.figure_students(session, report, "subsidy_total")


def test_explain_a_transferred_pupil_month_by_month(session: Session, county: fixture.County) -> None:
    s3 = county.pupils["s3"]
    result = subsidy.student_subsidy(session, actor=county.users["reviewer"], student_id=s3.id, year=2024,
                                     today=TODAY)
    months = [(line.month, result.school_names[line.school_id][0], line.meal_amount) for line in result.lines]
    assert months == [
        ("2024-09", SCHOOL_A, Decimal("100.00")), ("2024-10", SCHOOL_A, Decimal("100.00")),
        ("2024-11", SCHOOL_A, Decimal("100.00")), ("2024-12", SCHOOL_A, Decimal("100.00")),
        ("2025-01", SCHOOL_B, Decimal("100.00")), ("2025-02", SCHOOL_B, Decimal("0.00")),
        ("2025-03", SCHOOL_B, Decimal("120.00")), ("2025-04", SCHOOL_B, Decimal("120.00")),
        ("2025-05", SCHOOL_B, Decimal("120.00")), ("2025-06", SCHOOL_B, Decimal("120.00")),
        ("2025-07", SCHOOL_B, Decimal("120.00")), ("2025-08", SCHOOL_B, Decimal("0.00")),
    ]
    assert result.meal_total == Decimal("1100.00") and result.overlaps == []
    march = result.lines[6]
    assert "营养膳食补助 5.00 元/天（国家标准，2021年9月起）" in march.rule
    assert "县级配套 1.00 元/天（县定，2025年3月起）" in march.rule and "20 天" in march.rule
    as_json = subsidy.subsidy_json(result)
    assert as_json["totals"] == {"months": 12, "meal_amount": 1100.0, "allowance_amount": 0.0}
    assert as_json["months"][4]["school_code"] == SCHOOL_B and as_json["months"][4]["meal_model"] == "2"


def test_explain_the_suspended_boarder(session: Session, county: fixture.County) -> None:
    s2 = county.pupils["s2"]
    result = subsidy.student_subsidy(session, actor=county.users["reg_a"], student_id=s2.id, year=2024, today=TODAY)
    assert [line.month for line in result.lines] == ["2024-09", "2024-10", "2025-03", "2025-04", "2025-05",
                                                     "2025-06", "2025-07", "2025-08"]
    assert (result.meal_total, result.allowance_total) == (Decimal("800.00"), Decimal("700.00"))
    assert "一补（小学寄宿生） 4.00 元/天" in result.lines[0].rule and "÷ 10 个上课月" in result.lines[0].rule
    # Without a year: every month from the first enrolment up to this month.
    whole = subsidy.student_subsidy(session, actor=county.users["reg_a"], student_id=s2.id, today=TODAY)
    assert whole.lines[0].month == "2020-09" and whole.lines[-1].month == "2026-11"
    assert whole.lines[0].meal_amount == Decimal("80.00")  # 4.00 元/天 in 2020 × 20 days


def test_a_day_pupil_flagged_for_the_allowance_gets_none_where_the_county_pays_none(
        session: Session, county: fixture.County) -> None:
    result = subsidy.student_subsidy(session, actor=county.users["reg_a"], student_id=county.pupils["s6"].id,
                                     year=2024, today=TODAY)
    assert result.allowance_total == 0 and result.meal_total == Decimal("600.00")
    assert all("一补 0（本县不补助走读生）" in line.rule for line in result.lines if line.school_days)


def test_explain_is_scoped(session: Session, county: fixture.County) -> None:
    with pytest.raises(NotFound):
        subsidy.student_subsidy(session, actor=county.users["reg_b"], student_id=county.pupils["s1"].id,
                                today=TODAY)


def test_overlapping_periods_are_flagged_not_hidden(session: Session, county: fixture.County) -> None:
    s1 = county.pupils["s1"]
    # A period written by hand around the services: the explanation must show the double month.
    b = county.pupils["s4"].school_id
    session.add(EnrolmentPeriod(student_id=s1.id, school_id=b, from_month="2024-10", to_month="2024-10",
                                **period_values(s1)))
    session.flush()
    session.expire(s1, ["periods"])
    result = subsidy.student_subsidy(session, actor=county.users["reviewer"], student_id=s1.id, year=2024,
                                     today=TODAY)
    assert result.overlaps == ["2024-10"]


def test_a_county_calendar_replaces_the_default_days(session: Session, county: fixture.County) -> None:
    days = {"2024-09": 21, "2024-10": 16, "2024-11": 21, "2024-12": 22, "2025-01": 10, "2025-03": 21,
            "2025-04": 22, "2025-05": 19, "2025-06": 21, "2025-07": 7}
    subsidy.set_school_calendar(session, actor=county.users["admin"], county=county.county, year=2024, days=days)
    result = subsidy.student_subsidy(session, actor=county.users["reviewer"], student_id=county.pupils["s1"].id,
                                     year=2024, today=TODAY)
    expected = sum(Decimal(5 * d) for m, d in days.items() if m < "2025-03") + sum(
        Decimal(6 * d) for m, d in days.items() if m >= "2025-03")
    assert result.meal_total == expected == Decimal("990")  # 90 days at 5.00, 90 at 6.00
    assert "县校历 16 天" in result.lines[1].rule
    with pytest.raises(RuleViolation, match="2025-09"):
        subsidy.set_school_calendar(session, actor=county.users["admin"], county=county.county, year=2024,
                                    days={"2025-09": 20})
    with pytest.raises(PermissionDenied):
        subsidy.set_school_calendar(session, actor=county.users["reviewer"], county=county.county, year=2024,
                                    days=days)


def test_county_rates_are_checked_and_audited(session: Session, county: fixture.County) -> None:
    admin = county.users["admin"]
    with pytest.raises(RuleViolation) as refused:
        subsidy.set_county_rate(session, actor=admin, county=county.county, kind="lunch", effective_month="2025-13",
                                per_day="-1", days_per_year=0)
    assert "effective_month" in str(refused.value.details)
    with pytest.raises(RuleViolation) as refused:
        subsidy.set_county_rate(session, actor=admin, county=county.county, kind="lunch", effective_month="2025-03",
                                per_day="-1", days_per_year=0)
    assert {d["field"] for d in refused.value.details} == {"kind", "per_day", "days_per_year"}
    with pytest.raises(PermissionDenied):
        subsidy.set_county_rate(session, actor=county.users["reviewer"], county=county.county, kind="topup",
                                effective_month="2025-03", per_day="2", days_per_year=200)
    audited = session.scalars(select(AuditEntry).where(AuditEntry.action == "subsidy.rate",
                                                       AuditEntry.org_unit_id == county.county.id)).all()
    assert [a.after for a in audited] == [{"per_day": "1.00", "days_per_year": 200}]


def _book(*rows: tuple[str, str, str, int, int | None]) -> RateBook:
    return RateBook([SubsidyRate(kind=k, effective_month=m, per_day=Decimal(d), days_per_year=n, county_id=c)
                     for k, m, d, n, c in rows], {})


def test_national_rates_by_month_and_county_rates_winning_the_same_month(session: Session) -> None:
    national = session.scalars(select(SubsidyRate).where(SubsidyRate.county_id.is_(None))).all()
    book = RateBook(national, {})
    assert [str(book.rate("meal", m).per_day) for m in ("2011-09", "2014-10", "2014-11", "2021-08", "2021-09")] == [
        "3.00", "3.00", "4.00", "4.00", "5.00"]
    assert book.rate("meal", "2011-08") is None
    county_book = _book(("meal", "2021-09", "5.00", 200, None), ("meal", "2021-09", "5.50", 200, 7))
    assert county_book.rate("meal", "2022-01").per_day == Decimal("5.50")


def test_allowance_for_day_pupils_only_where_the_county_pays_it() -> None:
    models = MealModels({1: "1"}, [])
    day_pupil = Pupil(grade=8, boarding_mode="1", boarding_allowance=True)
    without = _book(("meal", "2021-09", "5.00", 200, None), ("allowance_junior", "2011-09", "5.00", 250, None))
    line = month_line(without, 1, models.at(1, "2024-10"), "2024-10", day_pupil)
    assert line.allowance_amount == 0 and "本县不补助走读生" in line.rule
    half = _book(("meal", "2021-09", "5.00", 200, None), ("allowance_day_junior", "2024-09", "2.50", 250, 9))
    line = month_line(half, 1, models.at(1, "2024-10"), "2024-10", day_pupil)
    assert line.allowance_amount == Decimal("62.50") and "一补（初中走读生） 2.50 元/天（县定" in line.rule


def test_submitted_reports_are_frozen(session: Session, county: fixture.County) -> None:
    reg_a, reviewer = county.users["reg_a"], county.users["reviewer"]
    on_time = datetime(2024, 9, 15, 15, 0, tzinfo=UTC)  # 23:00 in Guizhou: still 15 September
    snapshot = report_submissions.submit_school_report(session, actor=reg_a, school_code=SCHOOL_A, year=2024,
                                                       now=on_time)
    assert snapshot.figures["subsidy_total"] == 2900.0
    # A later change of the pupils moves the live report, not the submitted one.
    subsidy.set_county_rate(session, actor=county.users["admin"], county=county.county, kind="topup",
                            effective_month="2024-09", per_day="0.50", days_per_year=200)
    live = reports.school_report(session, actor=reg_a, school_code=SCHOOL_A, year=2024).school_json()
    assert live["subsidy_total"] == 3010.0  # + 0.50 × 20 days × 11 pupil-months in Sep–Jan
    session.expire_all()
    again = report_submissions.latest(session, unit=county.pupils["s1"].school, year=2024)
    assert again is not None and again.figures["subsidy_total"] == 2900.0
    assert again.submitted_by.username == "subsidy_reg_a"
    listed = report_submissions.submissions(session, actor=reviewer, year=2024,
                                            now=datetime(2024, 9, 20, tzinfo=UTC))
    assert [(s.unit.code, s.snapshot is not None, s.late) for s in listed] == [(SCHOOL_A, True, False),
                                                                               (SCHOOL_B, False, True)]
    late = report_submissions.submit_school_report(session, actor=county.users["reg_b"], school_code=SCHOOL_B,
                                                   year=2024, now=datetime(2024, 9, 15, 16, 1, tzinfo=UTC))
    listed = report_submissions.submissions(session, actor=reviewer, year=2024,
                                            now=datetime(2024, 9, 20, tzinfo=UTC))
    assert [(s.snapshot.id if s.snapshot else None, s.late) for s in listed] == [(snapshot.id, False), (late.id, True)]
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "report.submit",
                                                    AuditEntry.object_id == str(snapshot.id))).one()
    with pytest.raises(PermissionDenied):
        report_submissions.submit_school_report(session, actor=reviewer, school_code=SCHOOL_A, year=2024)


def test_month_by_month_figures_of_the_year(session: Session, county: fixture.County) -> None:
    totals = reports.county_report(session, actor=county.users["reviewer"], year=2024).totals
    # Sep–Oct: s1 s2 s3 s4; Nov–Dec: s2 suspended; Jan: s3 at B; Feb: no school days, still on roll;
    # Mar–Jun: s2 back, s6 new; Jul: s4 graduated; Aug: no school days.
    assert totals.month_beneficiaries == [4, 4, 3, 3, 3, 3, 5, 5, 5, 5, 4, 4]
    assert [c // 100 for c in totals.month_cents] == [400, 400, 300, 300, 300, 0, 600, 600, 600, 600, 480, 0]
    assert sum(totals.month_cents) == totals.subsidy_cents
