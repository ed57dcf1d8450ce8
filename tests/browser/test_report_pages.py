"""The report pages and the dashboard in a real Chromium: the county table, the charts drawn by ECharts,
the pupils behind a figure, a pupil's months; screenshots of each."""

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from registry.db import unit_of_work
from registry.org_units import find_org_unit
from tests import subsidy_county
from tests.browser.test_intake_pages import sign_in

COUNTY = "529902"  # a copy of tests/subsidy_county.py's county, committed for the live server
TAG = "subsidy_web"


@pytest.fixture(scope="module")
def county(db_engine: Engine) -> int:
    """The committed county; returns the id of its transferred pupil s3."""
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        if find_org_unit(session, code=COUNTY) is None:
            built = subsidy_county.build(session, county_code=COUNTY, tag=TAG)
            return built.pupils["s3"].id
    with sessionmaker(db_engine)() as session:
        from sqlalchemy import select

        from registry.students import Student
        return session.scalars(select(Student.id).where(Student.name == "甲三", Student.school_id == find_org_unit(
            session, code=f"{COUNTY}0002").id)).one()


def test_reports_and_dashboard(browser: Any, live_server: str, county: int, shot: Callable[[Any, str], Any]) -> None:
    page = sign_in(browser, live_server, f"{TAG}_reviewer")
    page.goto(f"{live_server}/reports?year=2024")
    assert page.locator("h1").inner_text() == "补助测试县 县级常规统计报表"
    totals = page.locator("table.report tfoot")
    assert "4580.00" in totals.inner_text() and "合计（2 所）" in totals.inner_text()
    shot(page, "40-county-report")

    page.click("table.report tbody tr:first-child td:nth-child(5) a")  # 受益学生人数 of 测试甲小学
    page.wait_for_url("**/reports/students?**")
    assert "共 4 人" in page.content()
    shot(page, "41-report-pupils")

    page.goto(f"{live_server}/students/{county}/subsidy?year=2024")
    assert "共 12 个月：营养膳食补助 1100.00 元" in page.content()
    shot(page, "42-student-subsidy")

    page.goto(f"{live_server}/dashboard?year=2024")
    page.wait_for_selector("[data-chart='months'] svg")
    # Months, meal models, townships; workload and overdue tasks have no rows in this county (a table says so).
    assert page.locator("[data-chart] svg").count() == 3
    shot(page, "43-dashboard")

    page.goto(f"{live_server}/reports?year=2024&school={COUNTY}0001")
    assert "上报本学年报表" not in page.content()  # the county reads it; the school submits it
    page.context.close()

    registrar = sign_in(browser, live_server, f"{TAG}_reg_a")
    registrar.goto(f"{live_server}/reports?year=2024")
    registrar.click("text=上报本学年报表")
    registrar.wait_for_url("**submitted=**")
    assert "已上报" in registrar.content()
    shot(registrar, "44-school-report-submitted")
    registrar.context.close()
