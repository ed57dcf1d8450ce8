"""Data releases through HTTP: the JSON API (start, approve, list, download, refusals) and the pages (the
request form, my requests, the county's task page, a returned request's revision, the download page)."""

import io
import re
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import students
from registry.audit import AuditEntry
from registry.data_releases import DataRelease
from registry.org_units import OrgUnit
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout
from tests.factories import make_school, student_data, user

BIRTH = date(2016, 6, 12)  # this module's students' ID numbers: nobody else's
TODAY = date(2026, 10, 12)
SCHOOL = "2152099201"


@pytest.fixture
def school(session: Session) -> OrgUnit:
    """A school of its own with two grade-3 students, so a release of it holds exactly these two."""
    unit = make_school(session, code=SCHOOL, name="接口小学", township="520199992", township_name="接口乡")
    for seq, name in ((21, "接口甲"), (23, "接口乙")):
        student, _ = students.register_pending(session, actor=user(session, "aidcenter"), today=TODAY,
                                               data=student_data(seq=seq, birth=BIRTH, name=name, school_code=SCHOOL))
        students.activate(session, student_id=student.id, actor=user(session, "reviewer"), now=student.created_at)
    session.flush()
    return unit


def request(**changes: Any) -> dict[str, Any]:
    return {"org_units": [SCHOOL], "fields": ["name", "id_number", "guardian_phone"], "purpose": "县卫健局学生健康体检",
            "recipient_department": "演示县卫健局", "recipient_person": "李医生", **changes}


def start(client: TestClient, auth: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = client.post("/api/processes/data_release/instances", headers=auth, json={"data": request(**changes)})
    assert response.status_code == 201, response.text
    return response.json()


def complete(client: TestClient, started: dict[str, Any], data: dict[str, Any], by: str = "reviewer") -> None:
    (task,) = started["open_tasks"]
    response = client.post(f"/api/tasks/{task['id']}/complete", headers=token(client, by), json={"data": data})
    assert response.status_code == 200, response.text


def test_start_approve_list_and_download_through_the_api(client: TestClient, school: OrgUnit,
                                                         session: Session) -> None:
    requester = token(client, "aidcenter")
    started = start(client, requester, max_downloads=1)
    assert started["subject"]["type"] == "data_release" and started["org_unit"]["code"] == SCHOOL
    assert [(t["task_id"], t["role"]) for t in started["open_tasks"]] == [("approve_request", "county_reviewer")]
    release_id = started["subject"]["id"]
    pending = client.get(f"/api/releases/{release_id}", headers=requester).json()
    assert (pending["status"], pending["download_state"], pending["download_url"]) == ("open", "pending", None)
    complete(client, started, {"decision": "approve"})

    mine = client.get("/api/releases", headers=requester).json()
    assert mine["total"] >= 1 and mine["items"][0]["id"] == release_id
    release = mine["items"][0]
    assert (release["status"], release["rows"], release["remaining_downloads"]) == ("approved", 2, 1)
    assert release["download_url"] == f"/api/releases/{release_id}/download"
    assert release["fields"] == ["name", "id_number", "guardian_phone"] and release["full"] == []

    response = client.get(release["download_url"], headers=requester)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "no-store" in response.headers["cache-control"] and "filename*=UTF-8''" in response.headers["content-disposition"]
    rows = [r for r in load_workbook(io.BytesIO(response.content))["学生名单"].iter_rows(values_only=True)]
    assert release["number"] == started["id"]
    assert rows[0][0].startswith(f"数据提供审批 第 {started['id']} 号 · 仅限县卫健局学生健康体检使用 · 有效期至 ")
    assert [r[0] for r in rows[2:-2]] == ["接口甲", "接口乙"] and all("*" in r[1] and "*" in r[2] for r in rows[2:-2])

    again = client.get(release["download_url"], headers=requester)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert "下载次数已用完" in again.json()["message"]
    # The refusal was committed with the request, not rolled back with it.
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "data_release.download_refused", AuditEntry.object_id == str(release_id))) == 1


def test_others_cannot_download_or_see_a_release(client: TestClient, school: OrgUnit) -> None:
    started = start(client, token(client, "aidcenter"))
    complete(client, started, {"decision": "approve"})
    release_id = started["subject"]["id"]
    reviewer = token(client, "reviewer")
    assert client.get(f"/api/releases/{release_id}", headers=reviewer).json()["download_url"] is None
    assert client.get(f"/api/releases/{release_id}/download", headers=reviewer).status_code == 403
    outsider = token(client, "registrar1")
    assert client.get(f"/api/releases/{release_id}", headers=outsider).status_code == 404
    assert client.get(f"/api/releases/{release_id}/download", headers=outsider).status_code == 404
    assert client.get("/api/releases?scope=all", headers=reviewer).json()["total"] >= 1
    assert client.get("/api/releases?scope=all", headers=outsider).json()["total"] == 0


def test_a_bad_request_answers_422_naming_the_fields_and_creates_nothing(client: TestClient, school: OrgUnit,
                                                                         session: Session) -> None:
    before = session.scalar(select(func.count()).select_from(DataRelease))
    response = client.post("/api/processes/data_release/instances", headers=token(client, "aidcenter"),
                           json={"data": request(fields=["name", "wage"], valid_days=90, org_units=[])})
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"fields", "valid_days", "org_units"}
    assert session.scalar(select(func.count()).select_from(DataRelease)) == before
    assert client.post("/api/processes/data_release/instances", headers=token(client, "registrar1"),
                       json={"data": request()}).status_code == 403


def test_the_request_form_my_requests_and_the_county_task_page(client: TestClient, school: OrgUnit) -> None:
    login(client, "aidcenter")
    form = client.get("/releases/new")
    assert form.status_code == 200
    assert 'name="fields" value="id_number"' in form.text and "身份证件号" in form.text and "监护人电话" in form.text
    assert f'name="org_units" value="{SCHOOL}"' in form.text and "接口小学" in form.text
    posted = client.post("/releases/new", follow_redirects=False, data={
        "csrf_token": csrf_of(form.text), "org_units": [SCHOOL], "fields": ["name", "grade"], "grades": ["3"],
        "purpose": "县民政局留守儿童关爱统计", "recipient_department": "演示县民政局", "recipient_person": "赵科长",
        "valid_days": "5", "max_downloads": "2"})
    assert posted.status_code == 303, posted.text
    release_id = int(re.search(r"/releases/(\d+)", posted.headers["location"]).group(1))  # type: ignore[union-attr]
    detail = client.get(posted.headers["location"])
    assert "已提交" in detail.text and "演示县民政局" in detail.text and "约 2 人" in detail.text
    assert f'href="/releases/{release_id}"' in client.get("/releases").text
    assert "申请导出完整数据" in client.get("/students").text
    logout(client)

    login(client, "reviewer")
    tasks = client.get("/api/tasks", headers=token(client, "reviewer")).json()["items"]
    (task,) = [t for t in tasks if t["subject"]["type"] == "data_release" and t["subject"]["id"] == release_id]
    page = client.get(f"/tasks/{task['id']}")
    assert page.status_code == 200
    assert "县民政局留守儿童关爱统计" in page.text and "姓名、年级" in page.text and "赵科长" in page.text
    assert "演示县民政局 · 县民政局留守儿童关爱统计" in page.text and 'value="approve"' in page.text


def test_a_bad_form_comes_back_with_the_problems_beside_the_fields(client: TestClient, school: OrgUnit) -> None:
    login(client, "aidcenter")
    form = client.get("/releases/new")
    response = client.post("/releases/new", data={"csrf_token": csrf_of(form.text), "fields": ["name"],
                                                  "purpose": "统计", "recipient_department": "统计局",
                                                  "recipient_person": "王", "valid_days": "40"})
    assert response.status_code == 422
    assert "请至少选择一个县、乡镇或学校" in response.text and "至少 5 个字" in response.text
    assert "1–30 之间的整数" in response.text and 'value="统计局"' in response.text


def test_a_returned_request_is_revised_on_its_page_and_downloaded_until_the_limit(
        client: TestClient, school: OrgUnit) -> None:
    started = start(client, token(client, "aidcenter"), max_downloads=1)
    release_id = started["subject"]["id"]
    complete(client, started, {"decision": "return", "comment": "体检不需要身份证件号"})

    login(client, "aidcenter")
    tasks = client.get("/api/tasks", headers=token(client, "aidcenter")).json()["items"]
    (revise,) = [t for t in tasks if t["subject"]["id"] == release_id and t["process_id"] == "data_release"]
    task_page = client.get(f"/tasks/{revise['id']}")
    assert "退回意见：体检不需要身份证件号" in task_page.text
    assert f'href="/releases/{release_id}/revise"' in task_page.text and 'id="task-form"' not in task_page.text
    form = client.get(f"/releases/{release_id}/revise")
    assert form.status_code == 200 and 'value="id_number" checked' in form.text
    revised = client.post(f"/releases/{release_id}/revise", follow_redirects=False, data={
        "csrf_token": csrf_of(form.text), "org_units": [SCHOOL], "fields": ["name", "sex"],
        "purpose": "县卫健局学生健康体检", "recipient_department": "演示县卫健局", "recipient_person": "李医生",
        "max_downloads": "1"})
    assert revised.status_code == 303, revised.text
    assert client.get(f"/releases/{release_id}/revise").status_code == 409  # nothing to revise any more
    logout(client)

    reviewer = token(client, "reviewer")
    (approve,) = [t for t in client.get("/api/tasks", headers=reviewer).json()["items"]
                  if t["subject"]["id"] == release_id and t["process_id"] == "data_release"]
    assert client.post(f"/api/tasks/{approve['id']}/complete", headers=reviewer,
                       json={"data": {"decision": "approve"}}).status_code == 200

    login(client, "aidcenter")
    detail = client.get(f"/releases/{release_id}")
    link = re.search(r'href="(/releases/download/[^"]+)"', detail.text)
    assert link, detail.text
    first = client.get(link.group(1))
    assert first.status_code == 200
    header = next(load_workbook(io.BytesIO(first.content))["学生名单"].iter_rows(min_row=2, max_row=2, values_only=True))
    assert list(header) == ["姓名", "性别"]
    refused = client.get(link.group(1))
    assert refused.status_code == 409 and "无法下载" in refused.text and "下载次数已用完（共 1 次）" in refused.text
    log = client.get(f"/releases/{release_id}").text
    assert "下载文件" in log and "下载被拒绝" in log and "testclient" in log


def test_a_registrar_is_told_to_ask_the_principal(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/releases/new")
    assert page.status_code == 200 and "学籍管理员请向本校校长提出" in page.text and 'name="purpose"' not in page.text
