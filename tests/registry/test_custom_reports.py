"""Custom reports against tests/subsidy_county.py's hand count (school year 2024: 2024-09 … 2025-08).

From the fixture's docstring, per pupil (meal subsidy; 一补):
  s1 A whole year 1100            s2 A Sep–Oct + Mar–Aug: 800; 一补 100 × 7 = 700
  s3 A Sep–Dec 400, B Jan–Aug 700 s4 B Sep–Jun: 980; 一补 125 × 9 = 1125
  s5 C (no meals) whole year 0    s6 A Mar–Aug 600
Meal per month: 100 (5 元 × 20 days) Sep–Jan, 0 in February, 120 (6 元 × 20) Mar–Jul, 0 in August.
"""

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import custom_reports
from registry.audit import AuditEntry
from registry.custom_reports import ReportDefinition
from registry.errors import NotFound, PermissionDenied, RuleViolation
from tests import subsidy_county as fixture
from tests.factories import user
from tests.subsidy_county import SCHOOL_A, SCHOOL_B, SCHOOL_C, TOWNSHIP

ALL = ["students_total", "beneficiaries", "subsidy_total", "boarding_allowance_total"]


@pytest.fixture
def county(session: Session) -> fixture.County:
    return fixture.build(session)


def figures(session: Session, county: fixture.County, who: str, **definition: object) -> list[tuple]:
    """(dimension values…, on roll, beneficiaries, subsidy, 一补) per row, then the totals row."""
    parsed = ReportDefinition.parse({"measures": ALL, "year": 2024, **definition})
    table = custom_reports.run(session, actor=county.users[who], definition=parsed)
    rows = [(*key, *(g.measure(m) for m in ALL)) for key, g in table.rows]
    return rows + [("合计", *(table.totals.measure(m) for m in ALL))]


def test_a_school_year_by_school(session: Session, county: fixture.County) -> None:
    # A: s1 1100 + s2 800 + s3 400 + s6 600 = 2900, 一补 s2 700; B: s3 700 + s4 980 = 1680, 一补 1125;
    # C: s5 on roll, no meals. Totals: 6 children (s3 once), 5 beneficiaries, 4580, 1825.
    assert figures(session, county, "reviewer", dimensions=["school"]) == [
        (SCHOOL_A, 4, 4, Decimal(2900), Decimal(700)),
        (SCHOOL_B, 2, 2, Decimal(1680), Decimal(1125)),
        (SCHOOL_C, 1, 0, Decimal(0), Decimal(0)),
        ("合计", 6, 5, Decimal(4580), Decimal(1825)),
    ]


def test_month_as_a_dimension_counts_a_pupil_in_each_month_on_roll(session: Session, county: fixture.County) -> None:
    rows = figures(session, county, "reviewer", dimensions=["month"])
    # Sep–Oct: s1 s2 s3 s4 s5 on roll, s5 no meals: 4 × 100; 一补 s2 100 + s4 125.
    # Nov–Jan: s2 suspended: 3 × 100; 一补 s4 125.  February: no school days, nothing paid, still on roll.
    # Mar–Jun: s6 enters, s2 resumes: 5 × 120 = 600; 一补 225.  July: s4 graduated: 4 × 120; 一补 s2 100.
    # August: no school days.  Totals as by school: 4580 and 1825.
    assert rows == [
        ("2024-09", 5, 4, Decimal(400), Decimal(225)), ("2024-10", 5, 4, Decimal(400), Decimal(225)),
        ("2024-11", 4, 3, Decimal(300), Decimal(125)), ("2024-12", 4, 3, Decimal(300), Decimal(125)),
        ("2025-01", 4, 3, Decimal(300), Decimal(125)), ("2025-02", 4, 3, Decimal(0), Decimal(0)),
        ("2025-03", 6, 5, Decimal(600), Decimal(225)), ("2025-04", 6, 5, Decimal(600), Decimal(225)),
        ("2025-05", 6, 5, Decimal(600), Decimal(225)), ("2025-06", 6, 5, Decimal(600), Decimal(225)),
        ("2025-07", 5, 4, Decimal(480), Decimal(100)), ("2025-08", 5, 4, Decimal(0), Decimal(0)),
        ("合计", 6, 5, Decimal(4580), Decimal(1825)),
    ]


def test_by_meal_model_follows_the_schools_change_in_march(session: Session, county: fixture.County) -> None:
    # A model 1 all year. B model 2 until February: s3 Jan 100 + s4 Sep–Jan 500 = 600, 一补 s4 5 × 125;
    # model 4 from March: s3 Mar–Jul 600 + s4 Mar–Jun 480 = 1080, 一补 4 × 125. C serves none (blank, last).
    assert figures(session, county, "reviewer", dimensions=["meal_model"]) == [
        ("1", 4, 4, Decimal(2900), Decimal(700)),
        ("2", 2, 2, Decimal(600), Decimal(625)),
        ("4", 2, 2, Decimal(1080), Decimal(500)),
        ("", 1, 0, Decimal(0), Decimal(0)),
        ("合计", 6, 5, Decimal(4580), Decimal(1825)),
    ]


def test_by_sex_and_school(session: Session, county: fixture.County) -> None:
    # The fixture draws sexes at random: fix them here (girls s2, s3, s5; boys s1, s4, s6).
    for name, sex in (("s1", "1"), ("s2", "2"), ("s3", "2"), ("s4", "1"), ("s5", "2"), ("s6", "1")):
        county.pupils[name].sex = sex
    session.flush()
    # A boys s1 1100 + s6 600; A girls s2 800 (一补 700) + s3 400; B boys s4 980 (一补 1125); B girls s3 700;
    # C girls s5. Totals: s3 once.
    assert figures(session, county, "reviewer", dimensions=["sex", "school"]) == [
        ("1", SCHOOL_A, 2, 2, Decimal(1700), Decimal(0)),
        ("1", SCHOOL_B, 1, 1, Decimal(980), Decimal(1125)),
        ("2", SCHOOL_A, 2, 2, Decimal(1200), Decimal(700)),
        ("2", SCHOOL_B, 1, 1, Decimal(700), Decimal(0)),
        ("2", SCHOOL_C, 1, 0, Decimal(0), Decimal(0)),
        ("合计", 6, 5, Decimal(4580), Decimal(1825)),
    ]


def test_filters_keep_only_the_values_asked_for(session: Session, county: fixture.County) -> None:
    # Boarders: s2 at A (800; 一补 700) and s4 at B (980; 一补 1125).
    assert figures(session, county, "reviewer", dimensions=["school"], filters={"boarding": ["2"]}) == [
        (SCHOOL_A, 1, 1, Decimal(800), Decimal(700)), (SCHOOL_B, 1, 1, Decimal(980), Decimal(1125)),
        ("合计", 2, 2, Decimal(1780), Decimal(1825))]
    # March only: A s1 s2 s6 3 × 120, 一补 s2 100; B s3 s4 2 × 120, 一补 s4 125; C s5.
    assert figures(session, county, "reviewer", dimensions=["school"], filters={"month": ["2025-03"]}) == [
        (SCHOOL_A, 3, 3, Decimal(360), Decimal(100)), (SCHOOL_B, 2, 2, Decimal(240), Decimal(125)),
        (SCHOOL_C, 1, 0, Decimal(0), Decimal(0)), ("合计", 6, 5, Decimal(600), Decimal(225))]
    # Grade 9 at school B, by grade: s4 alone.
    assert figures(session, county, "reviewer", dimensions=["grade"],
                   filters={"school": [SCHOOL_B], "grade": ["9"]}) == [
        ("9", 1, 1, Decimal(980), Decimal(1125)), ("合计", 1, 1, Decimal(980), Decimal(1125))]
    # One township: everybody, one row.
    assert figures(session, county, "reviewer", dimensions=["township"], filters={"township": [TOWNSHIP]}) == [
        (TOWNSHIP, 6, 5, Decimal(4580), Decimal(1825)), ("合计", 6, 5, Decimal(4580), Decimal(1825))]


def test_a_month_period(session: Session, county: fixture.County) -> None:
    # January 2025: A pays s1 (s2 suspended, s3 gone): 100; B s3 and s4: 200, 一补 s4 125; C s5.
    assert figures(session, county, "reviewer", dimensions=["school"], year=2025, month=1) == [
        (SCHOOL_A, 1, 1, Decimal(100), Decimal(0)), (SCHOOL_B, 2, 2, Decimal(200), Decimal(125)),
        (SCHOOL_C, 1, 0, Decimal(0), Decimal(0)), ("合计", 4, 3, Decimal(300), Decimal(125))]


def test_without_dimensions_there_is_one_row_equal_to_the_totals(session: Session, county: fixture.County) -> None:
    assert figures(session, county, "township") == [(6, 5, Decimal(4580), Decimal(1825)),
                                                    ("合计", 6, 5, Decimal(4580), Decimal(1825))]


def test_the_title_names_the_callers_unit(session: Session, county: fixture.County) -> None:
    definition = ReportDefinition.parse({"measures": ["students_total"], "year": 2024})
    township = custom_reports.run(session, actor=county.users["township"], definition=definition)
    assert township.unit.code == TOWNSHIP and township.title == "补助测试镇 自定义报表 2024–2025 学年"
    assert custom_reports.run(session, actor=county.users["admin"], definition=definition).unit == county.county


def test_a_registrar_sees_only_their_school_even_in_a_shared_definition(session: Session,
                                                                          county: fixture.County) -> None:
    saved = custom_reports.create_definition(
        session, actor=county.users["reviewer"], name="分校统计", shared=True,
        definition={"dimensions": ["school"], "measures": ALL, "year": 2024})
    registrar = county.users["reg_a"]
    assert saved.id in [d.id for d in custom_reports.list_definitions(session, actor=registrar)]
    _, table = custom_reports.run_saved(session, actor=registrar, report_id=saved.id)
    # A alone: s1 s2 s3 s6, 2900 and 700; s3's months at B are not A's.
    assert [(key, g.measure("students_total"), g.measure("subsidy_total")) for key, g in table.rows] == [
        ((SCHOOL_A,), 4, Decimal(2900))]
    assert table.totals.measure("boarding_allowance_total") == Decimal(700)
    assert table.unit.code == SCHOOL_A
    # Another period when run: January 2025 at A is s1's 100.
    _, january = custom_reports.run_saved(session, actor=registrar, report_id=saved.id, year=2025, month=1)
    assert january.totals.measure("subsidy_total") == Decimal(100)


def test_unknown_names_and_values_are_refused_naming_the_field(session: Session, county: fixture.County) -> None:
    cases = [
        ({"dimensions": ["colour"], "measures": ["students_total"], "year": 2024}, "dimensions", "不认识“colour”"),
        ({"dimensions": [], "measures": ["profit"], "year": 2024}, "measures", "统计指标：不认识“profit”"),
        ({"dimensions": [], "measures": [], "year": 2024}, "measures", "至少选一项"),
        ({"measures": ["students_total"], "year": 1999}, "year", "年份"),
        ({"measures": ["students_total"], "year": 2024, "month": 13}, "month", "月份"),
        ({"measures": ["students_total"], "year": 2024, "filters": {"sex": ["9"]}}, "filters.sex",
         "筛选条件 性别：不认识的值 “9”"),
        ({"measures": ["students_total"], "year": 2024, "filters": {"month": ["2023-09"]}}, "filters.month",
         "“2023-09”"),
        ({"measures": ["students_total"], "year": 2024, "filters": {"height": ["1"]}}, "filters",
         "不认识的维度“height”"),
    ]
    for data, field, words in cases:
        with pytest.raises(RuleViolation) as refused:
            ReportDefinition.parse(data)
        assert field in [d["field"] for d in refused.value.details], data
        assert words in refused.value.message, (refused.value.message, words)
    unknown_school = ReportDefinition.parse({"measures": ["students_total"], "year": 2024,
                                             "filters": {"school": ["5299019999"]}})
    with pytest.raises(RuleViolation) as refused:
        custom_reports.run(session, actor=county.users["reviewer"], definition=unknown_school)
    assert refused.value.details == [{"field": "filters.school", "message": "筛选条件 学校：本县没有代码 5299019999"}]


def test_saved_definitions_are_shared_updated_and_deleted_by_their_owner_with_audit(
        session: Session, county: fixture.County) -> None:
    reviewer, registrar = county.users["reviewer"], county.users["reg_a"]
    private = custom_reports.create_definition(session, actor=reviewer, name="  我的报表  ",
                                               definition={"measures": ["beneficiaries"], "year": 2024})
    assert private.name == "我的报表" and private.shared is False
    with pytest.raises(NotFound):
        custom_reports.get_definition(session, actor=registrar, report_id=private.id)
    custom_reports.update_definition(session, actor=reviewer, report_id=private.id, shared=True)
    with pytest.raises(NotFound):  # another county's user does not see a shared one
        custom_reports.get_definition(session, actor=user(session, "registrar1"), report_id=private.id)
    assert private.shared
    assert private.id in [d.id for d in custom_reports.list_definitions(session, actor=registrar)]
    with pytest.raises(PermissionDenied):
        custom_reports.update_definition(session, actor=registrar, report_id=private.id, name="改名")
    with pytest.raises(PermissionDenied):
        custom_reports.delete_definition(session, actor=registrar, report_id=private.id)
    with pytest.raises(RuleViolation) as refused:
        custom_reports.update_definition(session, actor=reviewer, report_id=private.id,
                                         definition={"measures": ["x"], "year": 2024})
    assert refused.value.details[0]["field"] == "measures"
    custom_reports.update_definition(session, actor=reviewer, report_id=private.id, name="按月受益",
                                     definition={"dimensions": ["month"], "measures": ["beneficiaries"], "year": 2024})
    assert private.definition["dimensions"] == ["month"]
    custom_reports.delete_definition(session, actor=reviewer, report_id=private.id)
    with pytest.raises(NotFound):
        custom_reports.get_definition(session, actor=reviewer, report_id=private.id)
    entries = session.scalars(select(AuditEntry).where(AuditEntry.object_type == "custom_report",
                                                       AuditEntry.object_id == str(private.id))
                              .order_by(AuditEntry.id)).all()
    assert [e.action for e in entries] == ["custom_report.create", "custom_report.update", "custom_report.update",
                                           "custom_report.delete"]
    assert entries[2].before["name"] == "我的报表" and entries[2].after["name"] == "按月受益"
    assert all(e.actor_id == reviewer.id for e in entries)
