"""Other departments' figures per township (Art. 18) beside tests/subsidy_county.py's beneficiaries.

In school year 2024 the fixture's township 补助测试镇 has 5 beneficiaries (s1 s2 s3 s6 at A, s3 s4 at B, s3
once; s5's school C serves no meals). A second township, made here, has no school and so none.
"""

import io
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import external_statistics as stats
from registry.audit import AuditEntry
from registry.errors import PermissionDenied, RuleViolation
from registry.external_statistics import ExternalStatistic
from registry.org_units import OrgKind, create_org_unit
from registry.users import Role, create_user, grant_role
from tests import subsidy_county as fixture
from tests.conftest import DEMO_PASSWORD
from tests.subsidy_county import TOWNSHIP

OTHER = "529901102"


@pytest.fixture
def county(session: Session) -> fixture.County:
    built = fixture.build(session)
    create_org_unit(session, code=OTHER, name="补助测试乡", kind=OrgKind.township, parent=built.county)
    return built


def xlsx(*rows: tuple, header: tuple = stats.COLUMNS) -> bytes:
    book = Workbook()
    book.active.append(list(header))
    for row in rows:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def stored(session: Session, county: fixture.County) -> list[tuple[str, str, Decimal]]:
    rows = session.scalars(select(ExternalStatistic).where(ExternalStatistic.county_id == county.county.id)
                           .order_by(ExternalStatistic.indicator, ExternalStatistic.township_id)).all()
    return [(r.indicator, r.source, r.value) for r in rows]


def table(session: Session, county: fixture.County, who: str = "admin") -> dict[str, list[tuple]]:
    return {c.indicator: [(t.township.code, t.beneficiaries, t.value, t.ratio, t.flag) for t in c.townships]
            for c in stats.comparisons(session, actor=county.users[who], school_year=2024)}


def test_import_then_ratios_and_flags(session: Session, county: fixture.County) -> None:
    data = xlsx((TOWNSHIP, "补助测试镇", "学龄儿童数", 4, "县统计局"), (int(OTHER), "补助测试乡", "学龄儿童数", "10", "县统计局"),
                (), (TOWNSHIP, "补助测试镇", "常住儿童数", 6, "县卫健局"))
    result = stats.import_statistics(session, actor=county.users["admin"], school_year=2024, data=data)
    assert (result.rows, result.indicators, result.replaced) == (3, ["学龄儿童数", "常住儿童数"], 0)
    # 5 / 4 = 1.25 above 1.0: more beneficiaries than children; 0 / 10 below 0.8; 5 / 6 = 0.83 within.
    assert table(session, county, "reviewer") == {
        "学龄儿童数": [(TOWNSHIP, 5, Decimal(4), Decimal("1.25"), "受益学生多于外部统计数，可能有虚报学生，请核查"),
                  (OTHER, 0, Decimal(10), Decimal("0.00"), "受益学生不足外部统计数的 80%，可能有漏报，请核查")],
        "常住儿童数": [(TOWNSHIP, 5, Decimal(6), Decimal("0.83"), None),
                  (OTHER, 0, None, None, "缺少外部数据")],
    }


def test_a_reimport_of_the_same_year_and_indicator_replaces_it(session: Session, county: fixture.County) -> None:
    admin = county.users["admin"]
    stats.import_statistics(session, actor=admin, school_year=2024, data=xlsx(
        (TOWNSHIP, "", "学龄儿童数", 4, "县统计局"), (OTHER, "", "学龄儿童数", 10, "县统计局"),
        (TOWNSHIP, "", "常住儿童数", 6, "县卫健局")))
    again = stats.import_statistics(session, actor=admin, school_year=2024, data=xlsx(
        (TOWNSHIP, "", "学龄儿童数", "5", "县统计局（修订）")))
    assert again.replaced == 2
    assert stored(session, county) == [("学龄儿童数", "县统计局（修订）", Decimal(5)), ("常住儿童数", "县卫健局", Decimal(6))]
    # 5 / 5 = 1.00 is not above 1.0: no flag; the other township's figure went with the old import.
    assert table(session, county)["学龄儿童数"] == [(TOWNSHIP, 5, Decimal(5), Decimal("1.00"), None),
                                              (OTHER, 0, None, None, "缺少外部数据")]
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "external_statistic.import",
                                                       AuditEntry.org_unit_id == county.county.id)
                              .order_by(AuditEntry.id)).all()
    assert len(entries) == 2 and entries[1].before == {f"学龄儿童数/{TOWNSHIP}": "4.00", f"学龄儿童数/{OTHER}": "10.00"}
    assert entries[1].after == {f"学龄儿童数/{TOWNSHIP}": "5"}


def test_one_bad_row_and_nothing_is_stored(session: Session, county: fixture.County) -> None:
    with pytest.raises(RuleViolation) as refused:
        stats.import_statistics(session, actor=county.users["admin"], school_year=2024, data=xlsx(
                                    (TOWNSHIP, "补助测试镇", "学龄儿童数", 4, "县统计局"),
                                    ("529999999", "别县镇", "学龄儿童数", 4, "县统计局"),
                                    (OTHER, "补助测试乡", "学龄儿童数", "约三百", "县统计局"),
                                    (OTHER, "补助测试乡", "", -1, "")))
    messages = [d["message"] for d in refused.value.details]
    assert messages == ["第 3 行 乡镇代码：本县没有代码为 529999999 的乡镇", "第 4 行 数值：“约三百”不是数字",
                        "第 5 行 指标：必填，最多 60 字（如 学龄儿童数）", "第 5 行 来源：必填，最多 100 字（如 县统计局）",
                        "第 5 行 数值：应为 0 或正数"]
    assert "未导入任何数据" in refused.value.message
    assert stored(session, county) == []
    for data, words in ((b"not a workbook", "不是 XLSX 文件"), (xlsx(header=("乡镇", "数")), "缺少列 乡镇代码"),
                        (xlsx(), "没有数据行"),
                        (xlsx((TOWNSHIP, "", "学龄儿童数", 1, "甲"), (TOWNSHIP, "", "学龄儿童数", 2, "乙")),
                         "与第 2 行重复")):
        with pytest.raises(RuleViolation) as refused:
            stats.import_statistics(session, actor=county.users["admin"], school_year=2024, data=data)
        assert words in refused.value.message
    with pytest.raises(RuleViolation):
        stats.import_statistics(session, actor=county.users["admin"], school_year="2024", data=xlsx())
    assert session.scalar(select(func.count()).select_from(ExternalStatistic)
                          .where(ExternalStatistic.county_id == county.county.id)) == 0


def test_only_the_county_admin_or_aid_center_imports_and_only_county_users_compare(
        session: Session, county: fixture.County) -> None:
    data = xlsx((TOWNSHIP, "", "学龄儿童数", 4, "县统计局"))
    for who in ("reviewer", "township", "reg_a"):
        with pytest.raises(PermissionDenied):
            stats.import_statistics(session, actor=county.users[who], school_year=2024, data=data)
    for who in ("township", "reg_a"):
        with pytest.raises(PermissionDenied):
            stats.comparisons(session, actor=county.users[who], school_year=2024)
    assert stats.comparisons(session, actor=county.users["reviewer"], school_year=2023) == []
    aid = create_user(session, username="extstat_aid_center", display_name="资助中心", password=DEMO_PASSWORD)
    grant_role(session, user=aid, role=Role.county_aid_center, org_unit_code=fixture.COUNTY)
    assert stats.import_statistics(session, actor=aid, school_year=2024, data=data).rows == 1


def test_the_template_lists_the_countys_townships(session: Session, county: fixture.County) -> None:
    sheet = load_workbook(io.BytesIO(stats.template(session, actor=county.users["admin"]))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == stats.COLUMNS
    assert [r[:2] for r in rows[1:]] == [(TOWNSHIP, "补助测试镇"), (OTHER, "补助测试乡")]
