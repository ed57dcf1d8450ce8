"""/reports pages: the school's and the county's Art. 12 tables, the pupils behind a figure, a pupil's months."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import subsidy_county as fixture
from tests.api.test_pages import csrf_of, login
from tests.subsidy_county import SCHOOL_A, SCHOOL_B


@pytest.fixture
def county(session: Session) -> fixture.County:
    built = fixture.build(session)
    session.commit()
    return built


def cells(html: str, heading: str) -> str:
    """The value cell of a row headed `heading` in a two-column report table, tags stripped."""
    match = re.search(rf"<th scope=\"row\">{re.escape(heading)}</th><td class=\"num\">(.*?)</td>", html, re.S)
    assert match, heading
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_a_registrar_sees_and_submits_the_school_report(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_reg_a")
    page = client.get("/reports", params={"year": 2024})
    assert page.status_code == 200, page.text
    html = page.text
    assert "测试甲小学 常规统计报表" in html and "2024–2025 学年" in html
    assert (cells(html, "在校学生总数"), cells(html, "受益学生人数"), cells(html, "补助总额（元）"),
            cells(html, "补助标准（元/天）"), cells(html, "供餐模式")) == ("4", "4", "2900.00", "6.00", "学校食堂")
    assert f'/reports/students?figure=beneficiaries&amp;school={SCHOOL_A}&amp;year=2024' in html
    assert "本学年尚未上报" in html and "上报本学年报表" in html
    january = client.get("/reports", params={"year": 2024, "month": 1}).text  # January of school year 2024: 2025-01
    assert "2025年1月" in january and cells(january, "补助总额（元）") == "100.00" and "上报本学年报表" not in january

    refused = client.post("/reports/submit", data={"school": SCHOOL_A, "year": "2024"})
    assert refused.status_code == 403
    done = client.post("/reports/submit", data={"school": SCHOOL_A, "year": "2024", "csrf_token": csrf_of(html)},
                       follow_redirects=True)
    assert done.status_code == 200 and "已上报" in done.text and "重新上报" in done.text
    assert "subsidy_reg_a" in done.text or "补助测试 subsidy_reg_a" in done.text


def test_the_county_table_with_totals_submissions_and_links(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_reviewer")
    html = client.get("/reports", params={"year": 2024}).text
    assert "补助测试县 县级常规统计报表" in html
    assert "测试甲小学" in html and "测试乙学校" in html and "测试丙教学点" not in html
    assert "合计（2 所）" in html and "4580.00" in html and "1825.00" in html
    assert "企业（单位）供餐" in html and "混合供餐" in html
    assert html.count("逾期未报") == 2  # both schools, long after 2024-09-15
    assert f'/reports?school={SCHOOL_B}&amp;year=2024' in html
    drill = client.get("/reports", params={"school": SCHOOL_B, "year": 2024}).text
    assert cells(drill, "补助总额（元）") == "1680.00" and "返回全县报表" in drill and "上报本学年报表" not in drill


def test_the_pupils_behind_a_figure(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_township")
    page = client.get("/reports/students", params={"figure": "beneficiaries", "year": 2024, "school": SCHOOL_B})
    assert page.status_code == 200, page.text
    assert "共 2 人" in page.text and "甲三" in page.text and "乙四" in page.text
    assert county.pupils["s4"].id_number not in page.text  # township officers see masked ID numbers
    bad = client.get("/reports/students", params={"figure": "subsidy_total", "year": 2024})
    assert bad.status_code == 422 and "统计项" in bad.text


def test_a_pupils_subsidy_months_page(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_reviewer")
    s3 = county.pupils["s3"]
    page = client.get(f"/students/{s3.id}/subsidy", params={"year": 2024})
    assert page.status_code == 200, page.text
    assert "共 12 个月：营养膳食补助 1100.00 元" in page.text
    assert "测试甲小学" in page.text and "测试乙学校" in page.text and "2025年3月" in page.text
    assert "县级配套 1.00 元/天（县定，2025年3月起）" in page.text
    # The student page shows this school year's months (s1: 10 school months at 6.00 元 × 20 days).
    student_page = client.get(f"/students/{county.pupils['s1'].id}").text
    assert "12 个月：营养膳食补助 1200.00 元" in student_page and f"/students/{county.pupils['s1'].id}/subsidy" in student_page
    login(client, "registrar1")
    assert client.get(f"/students/{s3.id}/subsidy").status_code == 404


def test_hand_edited_queries_fall_back_to_defaults(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_reviewer")
    for params in ({"year": "abc"}, {"year": "1900", "month": "13"}, {"month": "-1"}):
        assert client.get("/reports", params=params).status_code == 200, params
    assert client.get("/reports", params={"school": "0000000000"}).status_code == 404


def test_an_error_page_keeps_the_navigation(client: TestClient) -> None:
    login(client, "reviewer")
    missing = client.get("/students/99999999")
    assert missing.status_code == 404 and "找不到页面或记录" in missing.text
    assert 'href="/tasks"' in missing.text and "张审核" in missing.text  # the header of a signed-in user
    unknown_path = client.get("/no-such-page")
    assert unknown_path.status_code == 404 and 'href="/tasks"' in unknown_path.text
