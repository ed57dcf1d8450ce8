"""The report and subsidy API of DESIGN.md "Contracts", on tests/subsidy_county.py's hand-counted county."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import subsidy_county as fixture
from tests.api.conftest import token
from tests.subsidy_county import SCHOOL_A, SCHOOL_B


@pytest.fixture
def county(session: Session) -> fixture.County:
    built = fixture.build(session)
    session.commit()
    return built


def test_school_and_county_reports(client: TestClient, county: fixture.County) -> None:
    registrar = token(client, "subsidy_reg_a")
    school = client.get(f"/api/reports/school/{SCHOOL_A}", params={"year": 2024}, headers=registrar)
    assert school.status_code == 200, school.text
    body = school.json()
    assert (body["students_total"], body["beneficiaries"], body["subsidy_rate"], body["subsidy_total"],
            body["meal_model"], body["submitted"]) == (4, 4, 6.0, 2900.0, "1", None)
    month = client.get(f"/api/reports/school/{SCHOOL_A}", params={"year": 2025, "month": 1}, headers=registrar)
    assert month.json()["subsidy_total"] == 100.0 and month.json()["period"]["label"] == "2025年1月"

    county_report = client.get("/api/reports/county", params={"year": 2024},
                               headers=token(client, "subsidy_reviewer")).json()
    assert set(county_report) >= {"schools", "totals", "by_meal_model"}
    assert county_report["totals"]["subsidy_total"] == 4580.0 and county_report["totals"]["beneficiaries"] == 5
    assert set(county_report["schools"][0]) >= {"students_total", "classes", "beneficiaries", "boarders",
                                                 "boarding_allowance", "left_behind", "migrant_children",
                                                 "subsidy_rate", "subsidy_total", "meal_model"}
    assert county_report["by_meal_model"]["4"]["subsidy_total"] == 1080.0


def test_reports_are_scoped_and_bad_periods_refused(client: TestClient, county: fixture.County) -> None:
    registrar = token(client, "subsidy_reg_a")
    other = client.get(f"/api/reports/school/{SCHOOL_B}", params={"year": 2024}, headers=registrar)
    assert other.status_code == 404 and other.json()["code"] == "not_found"
    demo_registrar = client.get(f"/api/reports/school/{SCHOOL_A}", params={"year": 2024},
                                headers=token(client, "registrar1"))
    assert demo_registrar.status_code == 404
    for params in ({"year": 2024, "month": 13}, {"year": "abc"}, {}):
        refused = client.get(f"/api/reports/school/{SCHOOL_A}", params=params, headers=registrar)
        assert refused.status_code == 422, params
    assert client.get("/api/reports/county", params={"year": 2024}).status_code == 401


def test_the_pupils_behind_a_figure_with_masked_ids_for_the_township(client: TestClient,
                                                                      county: fixture.County) -> None:
    listed = client.get(f"/api/reports/school/{SCHOOL_B}/students",
                        params={"year": 2024, "figure": "beneficiaries"}, headers=token(client, "subsidy_township"))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2 and {p["name"] for p in body["items"]} == {"甲三", "乙四"}
    assert all("*" in p["id_number"] for p in body["items"])
    reviewer = token(client, "subsidy_reviewer")
    full = client.get("/api/reports/county/students", params={"year": 2024, "figure": "boarders"},
                      headers=reviewer).json()
    assert {p["name"] for p in full["items"]} == {"甲二", "乙四"} and all("*" not in p["id_number"]
                                                                      for p in full["items"])
    wrong = client.get("/api/reports/county/students", params={"year": 2024, "figure": "subsidy_total"},
                       headers=reviewer)
    assert wrong.status_code == 422 and "统计项" in wrong.json()["message"]


def test_submitting_freezes_the_figures(client: TestClient, county: fixture.County) -> None:
    registrar = token(client, "subsidy_reg_a")
    submitted = client.post(f"/api/reports/school/{SCHOOL_A}/submit", json={"year": 2024}, headers=registrar)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["figures"]["subsidy_total"] == 2900.0
    admin = token(client, "subsidy_admin")
    raised = client.post("/api/subsidy/rates", json={"kind": "topup", "effective_month": "2024-09", "per_day": "0.50",
                                                     "days_per_year": 200}, headers=admin)
    assert raised.status_code == 201, raised.text
    live = client.get(f"/api/reports/school/{SCHOOL_A}", params={"year": 2024}, headers=registrar).json()
    assert live["subsidy_total"] == 3010.0 and live["submitted"]["figures"]["subsidy_total"] == 2900.0
    listed = client.get("/api/reports/submissions", params={"year": 2024},
                        headers=token(client, "subsidy_reviewer")).json()
    assert [(i["school_code"], i["submitted"]) for i in listed["items"]] == [(SCHOOL_A, True), (SCHOOL_B, False)]
    refused = client.post(f"/api/reports/school/{SCHOOL_A}/submit", json={"year": "2024", "month": 0},
                          headers=registrar)
    assert refused.status_code == 422 and {d["field"] for d in refused.json()["details"]} == {"year", "month"}
    not_theirs = client.post(f"/api/reports/school/{SCHOOL_A}/submit", json={"year": 2024},
                             headers=token(client, "subsidy_reviewer"))
    assert not_theirs.status_code == 403


def test_a_students_subsidy_months(client: TestClient, county: fixture.County) -> None:
    s3 = county.pupils["s3"]
    body = client.get(f"/api/students/{s3.id}/subsidy", params={"year": 2024},
                      headers=token(client, "subsidy_reviewer")).json()
    assert body["totals"] == {"months": 12, "meal_amount": 1100.0, "allowance_amount": 0.0}
    assert [m["school_code"] for m in body["months"][3:5]] == [SCHOOL_A, SCHOOL_B]
    assert "县级配套" in body["months"][6]["rule"]
    hidden = client.get(f"/api/students/{s3.id}/subsidy", headers=token(client, "registrar1"))
    assert hidden.status_code == 404


def test_rates_and_calendar_for_the_county_admin(client: TestClient, county: fixture.County) -> None:
    admin = token(client, "subsidy_admin")
    rates = client.get("/api/subsidy/rates", headers=admin).json()["items"]
    assert {(r["kind"], r["effective_month"], r["per_day"], r["source"]) for r in rates} >= {
        ("meal", "2011-09", 3.0, "national"), ("meal", "2014-11", 4.0, "national"),
        ("meal", "2021-09", 5.0, "national"), ("topup", "2025-03", 1.0, "county")}
    bad = client.post("/api/subsidy/rates", json={"kind": "topup", "effective_month": "March",
                                                  "per_day": "abc", "days_per_year": "x"}, headers=admin)
    assert bad.status_code == 422 and "effective_month" in bad.text
    calendar = client.put("/api/subsidy/calendar/2024", json={"2024-09": 21, "2024-10": 16}, headers=admin)
    assert calendar.status_code == 200, calendar.text
    assert calendar.json()["days"]["2024-10"] == 16 and calendar.json()["days"]["2025-03"] == 0
    wrong = client.put("/api/subsidy/calendar/2024", json={"2024-09": "many", "2030-01": 3}, headers=admin)
    assert wrong.status_code == 422 and {d["field"] for d in wrong.json()["details"]} == {"2024-09", "2030-01"}
    assert client.put("/api/subsidy/calendar/2024", json={"2024-09": 21},
                      headers=token(client, "subsidy_reviewer")).status_code == 403
