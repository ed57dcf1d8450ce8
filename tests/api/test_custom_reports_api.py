"""Custom reports, XLSX exports and external statistics through HTTP, on tests/subsidy_county.py (school year
2024): A 4 pupils 2900 元 (一补 700), B 2 pupils 1680 元 (一补 1125), C 1 pupil without meals; county totals
6 pupils (s3 at A and B once), 5 beneficiaries, 4580 元, 一补 1825 元 (the hand count is in that file)."""

import io
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy.orm import Session

from registry import report_exports
from tests import subsidy_county as fixture
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login
from tests.subsidy_county import SCHOOL_A, SCHOOL_B, SCHOOL_C, TOWNSHIP

ALL = ["students_total", "beneficiaries", "subsidy_total", "boarding_allowance_total"]
BY_SCHOOL = {"dimensions": ["school"], "measures": ALL, "year": 2024}


@pytest.fixture
def county(session: Session) -> fixture.County:
    built = fixture.build(session)
    session.commit()
    return built


def sheet_rows(data: bytes) -> list[tuple]:
    return list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))


def test_run_a_definition(client: TestClient, county: fixture.County) -> None:
    auth = token(client, "subsidy_reviewer")
    result = client.post("/api/reports/custom/run", json=BY_SCHOOL, headers=auth)
    assert result.status_code == 200, result.text
    body = result.json()
    assert [(r["school"], r["school_label"], r["students_total"], r["subsidy_total"]) for r in body["rows"]] == [
        (SCHOOL_A, "测试甲小学", 4, 2900.0), (SCHOOL_B, "测试乙学校", 2, 1680.0), (SCHOOL_C, "测试丙教学点", 1, 0.0)]
    assert body["totals"] == {"students_total": 6, "beneficiaries": 5, "subsidy_total": 4580.0,
                              "boarding_allowance_total": 1825.0}
    assert [c["heading"] for c in body["columns"]] == ["学校", "在校学生数", "受益学生数", "营养膳食补助金额（元）", "一补金额（元）"]
    bad = client.post("/api/reports/custom/run", json={**BY_SCHOOL, "dimensions": ["colour"]}, headers=auth)
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "dimensions"
    assert "不认识“colour”" in bad.json()["message"]
    assert client.post("/api/reports/custom/run", json=[1], headers=auth).status_code == 422


def test_saved_definitions_through_the_api(client: TestClient, county: fixture.County) -> None:
    reviewer, registrar = token(client, "subsidy_reviewer"), token(client, "subsidy_reg_a")
    created = client.post("/api/reports/custom", json={"name": "各校汇总", "shared": True, "definition": BY_SCHOOL},
                          headers=reviewer)
    assert created.status_code == 201, created.text
    report_id = created.json()["id"]
    assert report_id in [d["id"] for d in client.get("/api/reports/custom", headers=registrar).json()["items"]]
    # The registrar runs the shared definition on their own school: A's 4 pupils, 2900 元.
    result = client.get(f"/api/reports/custom/{report_id}/result", headers=registrar).json()
    assert [(r["school"], r["students_total"]) for r in result["rows"]] == [(SCHOOL_A, 4)]
    assert result["totals"]["subsidy_total"] == 2900.0 and result["report"]["mine"] is False
    # January 2025 at A: s1 alone, 100 元.
    january = client.get(f"/api/reports/custom/{report_id}/result", params={"year": 2025, "month": 1},
                         headers=registrar).json()
    assert january["totals"]["subsidy_total"] == 100.0
    assert client.get(f"/api/reports/custom/{report_id}/result", params={"month": 1},
                      headers=registrar).json()["details"][0]["field"] == "year"
    assert client.put(f"/api/reports/custom/{report_id}", json={"name": "改"}, headers=registrar).status_code == 403
    assert client.delete(f"/api/reports/custom/{report_id}", headers=registrar).status_code == 403
    bad = client.put(f"/api/reports/custom/{report_id}", json={"shared": "yes"}, headers=reviewer)
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "shared"
    updated = client.put(f"/api/reports/custom/{report_id}", json={"name": "各校汇总（私有）", "shared": False},
                         headers=reviewer)
    assert updated.status_code == 200 and updated.json()["shared"] is False
    assert client.get(f"/api/reports/custom/{report_id}", headers=registrar).status_code == 404
    assert client.delete(f"/api/reports/custom/{report_id}", headers=reviewer).status_code == 204
    assert client.get(f"/api/reports/custom/{report_id}", headers=reviewer).status_code == 404
    assert client.get("/api/reports/custom/99999999999", headers=reviewer).status_code == 422


def test_county_and_school_reports_as_xlsx(client: TestClient, county: fixture.County) -> None:
    auth = token(client, "subsidy_reviewer")
    response = client.get("/api/reports/county.xlsx", params={"year": 2024}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == report_exports.XLSX
    assert f"filename*=UTF-8''{quote('补助测试县-常规统计报表-2024–2025学年.xlsx')}" in response.headers["content-disposition"]
    rows = sheet_rows(response.content)
    assert rows[0][0] == "补助测试县 县级常规统计报表" and "2024–2025 学年" in rows[1][0]
    headings = list(report_exports.REPORT_COLUMNS.values())
    assert list(rows[2]) == headings
    column = {h: i for i, h in enumerate(headings)}
    figures = ("在校学生总数", "受益学生人数", "补助总额（元）", "一补金额（元）", "供餐模式")
    # The county report lists the schools that served meals: A and B (C serves none).
    assert [(r[0], *(r[column[f]] for f in figures)) for r in rows[3:]] == [
        (SCHOOL_A, 4, 4, 2900, 700, "学校食堂"), (SCHOOL_B, 2, 2, 1680, 1125, "混合供餐"),
        ("合计（2 所）", 5, 5, 4580, 1825, None)]
    school = client.get(f"/api/reports/school/{SCHOOL_B}.xlsx", params={"year": 2025, "month": 1}, headers=auth)
    assert school.status_code == 200, school.text
    rows = sheet_rows(school.content)
    # January 2025 at B: s3 and s4, 2 × 100 元, 一补 s4 125 元.
    assert rows[0][0] == "测试乙学校 常规统计报表" and "2025年1月" in rows[1][0]
    assert [(r[column["受益学生人数"]], r[column["补助总额（元）"]], r[column["一补金额（元）"]]) for r in rows[3:]] == [
        (2, 200, 125), (2, 200, 125)]
    registrar = token(client, "subsidy_reg_a")
    assert client.get(f"/api/reports/school/{SCHOOL_B}.xlsx", params={"year": 2024},
                      headers=registrar).status_code == 404
    assert client.get("/api/reports/county.xlsx", params={"year": 1999}, headers=auth).status_code == 422


def test_a_custom_report_as_xlsx(client: TestClient, county: fixture.County) -> None:
    auth = token(client, "subsidy_reviewer")
    created = client.post("/api/reports/custom", json={"name": "按月", "definition": {
        "dimensions": ["month"], "measures": ["beneficiaries", "subsidy_total"], "year": 2024}}, headers=auth).json()
    response = client.get(f"/api/reports/custom/{created['id']}.xlsx", headers=auth)
    assert response.status_code == 200, response.text
    assert quote("按月-2024–2025学年.xlsx") in response.headers["content-disposition"]
    rows = sheet_rows(response.content)
    assert rows[0][0] == "补助测试县 自定义报表 2024–2025 学年" and rows[2] == ("月份", "受益学生数", "营养膳食补助金额（元）")
    # September: s1 s2 s3 s4 at schools serving meals, 4 × 100; March: five, 5 × 120; totals 5 and 4580.
    assert rows[3] == ("2024年9月", 4, 400) and rows[9] == ("2025年3月", 5, 600)
    assert rows[-1] == ("合计", 5, 4580) and len(rows) == 3 + 12 + 1


def workbook(*rows: tuple) -> bytes:
    book = Workbook()
    book.active.append(["乡镇代码", "乡镇名称", "指标", "数值", "来源"])
    for row in rows:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_external_statistics_import_and_ratios(client: TestClient, county: fixture.County) -> None:
    admin = token(client, "subsidy_admin")
    template = client.get("/api/external-statistics/template.xlsx", headers=admin)
    assert template.status_code == 200 and sheet_rows(template.content)[1][:2] == (TOWNSHIP, "补助测试镇")
    bad = client.post("/api/external-statistics", data={"school_year": "2024"}, headers=admin,
                      files={"file": ("x.xlsx", workbook((TOWNSHIP, "", "学龄儿童数", "很多", "县统计局")))})
    assert bad.status_code == 422 and bad.json()["details"][0]["message"] == "第 2 行 数值：“很多”不是数字"
    assert client.get("/api/external-statistics", params={"year": 2024}, headers=admin).json()["items"] == []
    done = client.post("/api/external-statistics", data={"school_year": "2024"}, headers=admin,
                       files={"file": ("x.xlsx", workbook((TOWNSHIP, "", "学龄儿童数", 4, "县统计局")))})
    assert done.status_code == 201, done.text
    body = client.get("/api/external-statistics", params={"year": 2024}, headers=admin).json()
    # 5 beneficiaries in the township / 4 children = 1.25: above 1.0.
    row = body["items"][0]["townships"][0]
    assert (row["beneficiaries"], row["value"], row["ratio"]) == (5, 4.0, 1.25) and "虚报" in row["flag"]
    assert body["thresholds"] == {"high": 1.0, "low": 0.8}
    reviewer = token(client, "subsidy_reviewer")
    assert client.post("/api/external-statistics", data={"school_year": "2024"}, headers=reviewer,
                       files={"file": ("x.xlsx", workbook())}).status_code == 403
    assert client.post("/api/external-statistics", data={"school_year": "2024"}, headers=admin).status_code == 422


def test_the_builder_page_runs_saves_and_keeps_a_bad_form(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_reviewer")
    blank = client.get("/reports/custom")
    assert blank.status_code == 200 and "自定义报表" in blank.text and 'id="result"' not in blank.text
    page = client.get("/reports/custom", params=[("run", "1"), ("d", "school"), ("m", "students_total"),
                                                 ("m", "subsidy_total"), ("year", "2024"), ("month", "")])
    assert page.status_code == 200, page.text
    html = re.sub(r"\s+", " ", page.text)
    assert '<th scope="row">测试甲小学</th> <td class="num">4</td><td class="num">2900.00</td>' in html
    assert '<td class="num">6</td><td class="num">4580.00</td>' in html
    export = re.search(r'href="(/reports/custom\.xlsx\?[^"]+)"', page.text)
    assert export
    xlsx = client.get(export.group(1).replace("&amp;", "&"))
    assert xlsx.status_code == 200 and sheet_rows(xlsx.content)[-1] == ("合计", 6, 4580)
    # An unknown value: the page comes back with the message by its field and the choices as they were.
    bad = client.get("/reports/custom", params=[("run", "1"), ("d", "school"), ("d", "sex"), ("m", "beneficiaries"),
                                                ("year", "2024"), ("f_grade", "99")])
    assert bad.status_code == 422
    assert 'id="error-filters-grade"' in bad.text and "筛选条件 年级：不认识的值 “99”" in bad.text
    assert 'value="sex" checked' in bad.text and 'value="beneficiaries" checked' in bad.text
    assert client.get("/reports/custom", params={"run": "1", "year": "abc"}).status_code == 422
    # Saving without a name keeps the definition; with one it is listed and opens again.
    form = {"csrf_token": csrf_of(page.text), "d": ["school"], "m": ["students_total", "subsidy_total"],
            "year": "2024", "month": "", "name": "  ", "shared": "1"}
    refused = client.post("/reports/custom", data=form)
    assert refused.status_code == 422 and "报表名称：必填" in refused.text
    assert 'value="school" checked' in refused.text and 'name="shared" value="1" checked' in refused.text
    saved = client.post("/reports/custom", data={**form, "name": "页面保存的报表"}, follow_redirects=True)
    assert saved.status_code == 200 and "报表定义已保存" in saved.text and "页面保存的报表" in saved.text
    assert "4580.00" in saved.text and "全县共享" in saved.text
    assert client.post("/reports/custom", data={**form, "csrf_token": ""}).status_code == 403
    login(client, "subsidy_reg_a")
    listed = client.get("/reports/custom").text
    opened = re.search(r'href="/reports/custom\?saved=(\d+)">页面保存的报表', listed)
    assert opened
    mine = client.get(f"/reports/custom?saved={opened.group(1)}").text
    assert "2900.00" in mine and "4580.00" not in mine and "测试乙学校</th>" not in mine


def test_the_external_statistics_page(client: TestClient, county: fixture.County) -> None:
    login(client, "subsidy_admin")
    page = client.get("/reports/external", params={"year": "2024"})
    assert page.status_code == 200 and "还没有导入外部统计数据" in page.text and "导入模板" in page.text
    csrf = csrf_of(page.text)
    bad = client.post("/reports/external", data={"csrf_token": csrf, "school_year": "2024"},
                      files={"file": ("x.xlsx", workbook(("999", "", "学龄儿童数", 4, "县统计局")))})
    assert bad.status_code == 422 and "第 2 行 乡镇代码：本县没有代码为 999 的乡镇" in bad.text
    empty = client.post("/reports/external", data={"csrf_token": csrf, "school_year": "2024"})
    assert empty.status_code == 422 and "请选择按模板填写的 XLSX 文件" in empty.text
    done = client.post("/reports/external", data={"csrf_token": csrf, "school_year": "2024"},
                       files={"file": ("x.xlsx", workbook((TOWNSHIP, "", "学龄儿童数", 10, "县统计局")))},
                       follow_redirects=True)
    assert done.status_code == 200 and "已导入 1 条数据" in done.text
    # 5 / 10 = 0.50, below 0.8: flagged in words.
    assert "0.50" in done.text and "需核查" in done.text and "可能有漏报" in done.text
    county_page = client.get("/reports", params={"year": "2024", "month": "1"}).text
    assert 'href="/api/reports/county.xlsx?year=2025&amp;month=1"' in county_page and "/reports/external" in county_page
    login(client, "subsidy_reg_a")
    assert client.get("/reports/external").status_code == 200  # a registrar sees the page without the tables
    school_page = client.get("/reports", params={"year": "2024"}).text
    assert f'href="/api/reports/school/{SCHOOL_A}.xlsx?year=2024"' in school_page
