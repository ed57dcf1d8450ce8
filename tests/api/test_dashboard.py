"""/dashboard on tests/subsidy_county.py's county: each chart's table holds the hand-counted figures."""

import json
import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from registry import dashboard
from tests import subsidy_county as fixture
from tests.api.test_pages import login


@pytest.fixture
def county(session: Session) -> fixture.County:
    built = fixture.build(session)
    session.commit()
    return built


def test_the_charts_of_a_school_year(session: Session, county: fixture.County) -> None:
    charts = {c.key: c for c in dashboard.dashboard(session, actor=county.users["reviewer"], year=2024,
                                                    now=datetime(2025, 9, 30, tzinfo=UTC))}
    months = charts["months"]
    assert [r.label for r in months.rows][:3] == ["9月", "10月", "11月"]
    assert [r.values for r in months.rows][:6] == [(4, 400.0), (4, 400.0), (3, 300.0), (3, 300.0), (3, 300.0),
                                                   (3, 0.0)]
    assert {r.label: r.values for r in charts["meal_models"].rows} == {"学校食堂": (4,), "企业（单位）供餐": (2,),
                                                                      "混合供餐": (2,)}
    assert [(r.label, r.values) for r in charts["townships"].rows] == [("补助测试镇", (5, 4580.0))]
    assert charts["workload"].rows == []  # the fixture's pupils were entered without processes
    assert [(r.label, r.values) for r in charts["late_reports"].rows] == [("测试甲小学", ("逾期未上报",)),
                                                                          ("测试乙学校", ("逾期未上报",))]


def test_the_page_carries_tables_and_chart_data(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_reviewer")
    page = client.get("/dashboard", params={"year": 2024})
    assert page.status_code == 200, page.text
    assert "工作台 · 2024–2025 学年" in page.text and "各乡镇受益学生人数" in page.text
    assert "<td class=\"num\">4580.00</td>" in page.text and "vendor/echarts/echarts.common.min.js" in page.text
    data = json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text,
                                re.S).group(1))
    assert {c["key"] for c in data} == {"months", "meal_models", "townships", "workload", "overdue", "late_reports"}
    registrar = client.get("/dashboard")
    assert registrar.status_code == 200


def test_workload_and_overdue_tasks_in_the_demo_county(session: Session) -> None:
    from registry import workflows
    from tests.factories import admit, student_data, user

    before = {r.label: r.values for r in dashboard._workload(session, user(session, "reviewer"))}
    admit(session, seq=431, birth=datetime(2016, 2, 3).date())
    workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                            data={"student": student_data(seq=433, birth=datetime(2016, 2, 3).date())},
                            now=datetime(2025, 9, 1, tzinfo=UTC))
    after = {r.label: r.values for r in dashboard._workload(session, user(session, "reviewer"))}
    running, completed = (after["学生信息录入审核"][i] - before.get("学生信息录入审核", (0, 0, 0, 0))[i] for i in (0, 1))
    assert (running, completed) == (1, 1)
    # The open principal review (due P5D) is long overdue in 2030; it sits at 城关镇中心小学.
    overdue = {r.label: r.values for r in dashboard._overdue(session, user(session, "reviewer"),
                                                             datetime(2030, 1, 1, tzinfo=UTC))}
    assert overdue["城关镇中心小学"][0] >= 1
    # registrar2's scope is their own school: 城关镇中心小学's tasks are not counted for them.
    theirs = {r.label for r in dashboard._overdue(session, user(session, "registrar2"), datetime(2030, 1, 1, tzinfo=UTC))}
    assert "城关镇中心小学" not in theirs
