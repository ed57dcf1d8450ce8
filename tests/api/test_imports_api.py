"""Bulk import through the JSON API and the pages: upload, progress, row report, submit, confirm."""

import io
from datetime import date

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import imports
from registry.db import utcnow
from registry.students import Student
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login
from tests.factories import SCHOOL_1, SCHOOL_2
from tests.registry.test_imports import pupil, xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def check_queued(client: TestClient, sessions: sessionmaker[Session]) -> None:
    """What the worker does (tests/workers runs the real one): take every queued batch and check it."""
    with sessions() as session:
        while (batch_id := imports.claim_next(session, now=utcnow())) is not None:
            session.commit()
            imports.check_batch(sessions, batch_id, store=client.app.state.files, today=date(2025, 10, 8))


def upload(client: TestClient, headers: dict[str, str], data: bytes, school: str = SCHOOL_1,
           name: str = "名单.xlsx") -> dict:
    response = client.post("/api/imports", headers=headers, data={"school_code": school},
                           files={"file": (name, data, XLSX)})
    assert response.status_code in (200, 202), response.text
    return response.json()


def test_upload_progress_report_submit_confirm(client: TestClient, sessions: sessionmaker[Session]) -> None:
    registrar = token(client, "registrar1")
    people = [pupil(901), pupil(903), pupil(905, sex="9")]
    # One file's bytes, sent twice: an XLSX built again a second later differs in its timestamps.
    listing = xlsx(people)
    queued = upload(client, registrar, listing)
    assert (queued["status"], queued["created"], queued["rows_done"], queued["school_code"]) == \
        ("queued", True, 0, SCHOOL_1)
    again = client.post("/api/imports", headers=registrar, data={"school_code": SCHOOL_1},
                        files={"file": ("copy.xlsx", listing, XLSX)})
    assert again.status_code == 200 and again.json()["id"] == queued["id"] and again.json()["created"] is False

    check_queued(client, sessions)
    batch = client.get(f"/api/imports/{queued['id']}", headers=registrar).json()
    assert (batch["status"], batch["rows_total"], batch["rows_done"], batch["progress"]) == ("validated", 3, 3, 1.0)
    assert batch["counts"]["new"] == 2 and batch["counts"]["invalid"] == 1
    assert [r["row_number"] for r in batch["rows"]["items"]] == [4]
    assert any("性别" in e for e in batch["rows"]["items"][0]["errors"])

    report = client.get(batch["report_url"], headers=registrar)
    assert report.status_code == 200 and report.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(report.content), read_only=True).worksheets[0]
    texts = [" ".join(str(v) for v in row if v is not None) for row in sheet.iter_rows(values_only=True)]
    assert any("测试905" in t and "性别" in t for t in texts)

    new_rows = client.get(f"/api/imports/{queued['id']}/rows?outcome=new", headers=registrar).json()
    assert new_rows["total"] == 2 and [r["name"] for r in new_rows["items"]] == ["测试901", "测试903"]

    started = client.post("/api/processes/batch_intake/instances", headers=registrar,
                          json={"data": {"batch_id": queued["id"]}})
    assert started.status_code in (200, 201), started.text
    for username, data in (("principal1", {"decision": "approve"}),
                           ("reviewer", {"decision": "approve", "excluded_rows": "3"})):
        headers = token(client, username)
        [task] = [t for t in client.get("/api/tasks", headers=headers).json()["items"]
                  if t["instance_id"] == started.json()["id"]]
        assert client.post(f"/api/tasks/{task['id']}/complete", headers=headers, json={"data": data}).status_code == 200
    done = client.get(f"/api/imports/{queued['id']}", headers=registrar).json()
    assert done["status"] == "confirmed" and done["counts"]["imported"] == 1 and done["counts"]["excluded"] == 1
    listed = client.get("/api/students?q=测试901", headers=registrar).json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "active"


def test_bad_uploads_get_clear_errors(client: TestClient, sessions: sessionmaker[Session]) -> None:
    registrar = token(client, "registrar1")
    not_mine = client.post("/api/imports", headers=registrar, data={"school_code": SCHOOL_2},
                           files={"file": ("a.xlsx", xlsx([pupil(911)]), XLSX)})
    assert not_mine.status_code == 403 and "学籍管理员" in not_mine.json()["message"]
    unknown = client.post("/api/imports", headers=registrar, data={"school_code": "9999999999"},
                          files={"file": ("a.xlsx", xlsx([pupil(911)]), XLSX)})
    assert unknown.status_code == 422 and unknown.json()["details"][0]["field"] == "school_code"
    missing = client.post("/api/imports", headers=registrar, data={"school_code": SCHOOL_1})
    assert missing.status_code == 422

    refused = upload(client, registrar, "姓名,性别\n张三,1\n".encode(), name="名单.csv")
    check_queued(client, sessions)
    batch = client.get(f"/api/imports/{refused['id']}", headers=registrar).json()
    assert batch["status"] == "refused" and batch["report_url"] is None
    assert any("身份证件号" in p["message"] for p in batch["problems"]), batch["problems"]
    submit = client.post("/api/processes/batch_intake/instances", headers=registrar,
                         json={"data": {"batch_id": refused["id"]}})
    assert submit.status_code == 409
    assert client.post("/api/processes/batch_intake/instances", headers=registrar,
                       json={"data": {"batch_id": "x"}}).status_code == 422


def test_other_schools_and_outsiders_do_not_see_a_batch(client: TestClient) -> None:
    batch = upload(client, token(client, "registrar1"), xlsx([pupil(913)]))
    assert client.get(f"/api/imports/{batch['id']}", headers=token(client, "registrar2")).status_code == 404
    assert client.get(f"/api/imports/{batch['id']}").status_code == 401
    assert client.get(f"/api/imports/{batch['id']}", headers=token(client, "reviewer")).status_code == 200
    ids = [b["id"] for b in client.get("/api/imports", headers=token(client, "registrar2")).json()["items"]]
    assert batch["id"] not in ids


def test_pages_upload_show_progress_and_submit(client: TestClient, sessions: sessionmaker[Session]) -> None:
    login(client, "registrar1")
    page = client.get("/imports")
    assert page.status_code == 200 and "上传并校验" in page.text and "导入模板" in page.text
    response = client.post("/imports", data={"school_code": SCHOOL_1, "csrf_token": csrf_of(page.text)},
                           files={"file": ("新生名单.xlsx", xlsx([pupil(921), pupil(923)]), XLSX)},
                           follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    waiting = client.get(location)
    assert "排队等待校验" in waiting.text and 'http-equiv="refresh"' in waiting.text

    check_queued(client, sessions)
    checked = client.get(location)
    assert "已校验，待提交" in checked.text and "提交审核（2 人）" in checked.text
    assert 'http-equiv="refresh"' not in checked.text
    submitted = client.post(f"{location}/submit", data={"csrf_token": csrf_of(checked.text)}, follow_redirects=True)
    assert submitted.status_code == 200 and "已提交校长审核" in submitted.text and "校长审核名单" in submitted.text

    again = client.post(f"{location}/submit", data={"csrf_token": csrf_of(submitted.text)})
    assert again.status_code == 409 and "审核中的批次不能提交审核" in again.text

    no_file = client.post("/imports", data={"school_code": SCHOOL_1, "csrf_token": csrf_of(page.text)})
    assert no_file.status_code == 422 and "请选择要上传的学生名单文件" in no_file.text
    forged = client.post("/imports", data={"school_code": SCHOOL_1, "csrf_token": "forged"},
                         files={"file": ("a.xlsx", xlsx([pupil(925)]), XLSX)})
    assert forged.status_code == 403


def test_the_county_confirms_on_the_task_page(client: TestClient, sessions: sessionmaker[Session]) -> None:
    registrar = token(client, "registrar1")
    batch = upload(client, registrar, xlsx([pupil(931), pupil(933)]))
    check_queued(client, sessions)
    client.post("/api/processes/batch_intake/instances", headers=registrar, json={"data": {"batch_id": batch["id"]}})
    principal = token(client, "principal1")
    [task] = [t for t in client.get("/api/tasks", headers=principal).json()["items"] if t["process_id"] == "batch_intake"]
    client.post(f"/api/tasks/{task['id']}/complete", headers=principal, json={"data": {"decision": "approve"}})

    login(client, "reviewer")
    inbox = client.get("/tasks")
    assert "县级确认入库" in inbox.text
    [confirm] = [t for t in client.get("/api/tasks", headers=token(client, "reviewer")).json()["items"]
                 if t["process_id"] == "batch_intake"]
    page = client.get(f"/tasks/{confirm['id']}")
    assert "排除的行号" in page.text and f"/imports/{batch['id']}" in page.text and "待入库" in page.text
    bad = client.post(f"/tasks/{confirm['id']}", data={"decision": "approve", "excluded_rows": "第三行",
                                                       "csrf_token": csrf_of(page.text)})
    assert bad.status_code == 422 and "排除的行号" in bad.text
    done = client.post(f"/tasks/{confirm['id']}", data={"decision": "approve", "excluded_rows": "3",
                                                        "csrf_token": csrf_of(page.text)}, follow_redirects=True)
    assert done.status_code == 200
    with sessions() as session:
        names = session.scalars(select(Student.name).where(Student.name.in_(["测试931", "测试933"]))).all()
    assert names == ["测试931"]
