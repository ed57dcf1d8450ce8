"""student_transfer through HTTP: the JSON API as other programs drive it, and the start pages."""

import re
from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout, student_form
from tests.factories import SCHOOL_1, SCHOOL_2, SCHOOL_3, student_data

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# Every test a birth date of its own in late 2012, which no other test uses.
def born(day: int) -> date:
    return date(2012, 10, day)


def admitted(client: TestClient, day: int) -> dict[str, Any]:
    """A student of school 1 taken through intake to 在籍 over the API."""
    started = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar1"),
                          json={"data": {"student": student_data(seq=201, birth=born(day), name=f"转学{day}")}})
    assert started.status_code == 201, started.text
    for username in ("principal1", "reviewer"):
        complete(client, username, open_task(client, username, started.json()["id"])["id"], {"decision": "approve"})
    student = client.get(f"/api/students/{started.json()['subject']['id']}", headers=token(client, "registrar1"))
    return student.json()


def open_task(client: TestClient, username: str, instance_id: int) -> dict[str, Any]:
    items = client.get("/api/tasks", headers=token(client, username)).json()["items"]
    mine = [t for t in items if t["instance_id"] == instance_id]
    assert len(mine) == 1, items
    return mine[0]


def complete(client: TestClient, username: str, task_id: int, data: dict[str, Any]) -> None:
    done = client.post(f"/api/tasks/{task_id}/complete", headers=token(client, username), json={"data": data})
    assert done.status_code == 200, done.text


def start(client: TestClient, username: str, data: dict[str, Any]) -> Any:
    return client.post("/api/processes/student_transfer/instances", headers=token(client, username),
                       json={"data": data})


# The API ------------------------------------------------------------------------------------------


def test_in_county_transfer_over_the_api_moves_the_student_and_splits_the_subsidy_months(client: TestClient) -> None:
    student = admitted(client, 1)
    started = start(client, "registrar1", {"kind": "in_county", "student_id": student["id"],
                                           "receiving_school_code": SCHOOL_2, "change_month": "2025-03"})
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["status"] == "running" and body["subject"]["id"] == student["id"]
    (confirm,) = body["open_tasks"]
    assert (confirm["task_id"], confirm["role"], confirm["org_unit"]["code"]) == (
        "confirm_sending", "school_principal", SCHOOL_1)

    complete(client, "principal1", confirm["id"], {"decision": "approve"})
    accept = open_task(client, "principal2", body["id"])
    detail = client.get(f"/api/tasks/{accept['id']}", headers=token(client, "principal2")).json()
    assert "城关镇中心小学 → 城关镇第一中学，转学年月 2025-03" in detail["instructions"]
    complete(client, "principal2", accept["id"], {"decision": "approve"})
    complete(client, "reviewer", open_task(client, "reviewer", body["id"])["id"], {"decision": "approve"})

    moved = client.get(f"/api/students/{student['id']}", headers=token(client, "registrar2")).json()
    assert moved["school_code"] == SCHOOL_2 and moved["status"] == "active"
    assert moved["enrolment_periods"] == [
        {"school_code": SCHOOL_1, "from_month": "2023-09", "to_month": "2025-02"},
        {"school_code": SCHOOL_2, "from_month": "2025-03", "to_month": None}]
    assert client.get(f"/api/students/{student['id']}", headers=token(client, "registrar1")).status_code == 404
    view = client.get(f"/api/instances/{body['id']}", headers=token(client, "registrar2")).json()
    assert view["status"] == "completed" and "student.transfer" in [h["action"] for h in view["history"]]


def test_bad_transfers_are_refused_with_the_field_and_change_nothing(client: TestClient) -> None:
    student = admitted(client, 2)
    base = {"kind": "in_county", "student_id": student["id"], "receiving_school_code": SCHOOL_2,
            "change_month": "2025-03"}
    month = start(client, "registrar1", {**base, "change_month": "2023-05"})
    assert month.status_code == 422
    assert month.json()["details"] == [{"field": "change_month", "message": "转学年月：不能早于入学年月 2023-09"}]
    nowhere = start(client, "registrar1", {**base, "receiving_school_code": "2152099999"})
    assert nowhere.status_code == 422 and nowhere.json()["details"][0]["field"] == "receiving_school_code"
    assert start(client, "registrar1", base).status_code == 201
    again = start(client, "registrar1", {**base, "kind": "out_of_county", "receiving_school_code": None})
    assert again.status_code == 422  # the shape first: receiving_school_code must be text
    again = start(client, "registrar1", {"kind": "out_of_county", "student_id": student["id"], "change_month": "2025-04"})
    assert again.status_code == 409 and "已有办理中的“转学”" in again.json()["message"]
    unchanged = client.get(f"/api/students/{student['id']}", headers=token(client, "registrar1")).json()
    assert unchanged["school_code"] == SCHOOL_1 and unchanged["enrolment_periods"][-1]["to_month"] is None


def test_a_transfer_held_by_the_process_admin_blocks_another_until_it_is_resumed_and_applied(
        client: TestClient) -> None:
    student = admitted(client, 7)
    base = {"kind": "in_county", "student_id": student["id"], "receiving_school_code": SCHOOL_2,
            "change_month": "2025-03"}
    first = start(client, "registrar1", base)
    assert first.status_code == 201, first.text
    admin = token(client, "processadmin")
    held = client.post(f"/api/instances/{first.json()['id']}/suspend", headers=admin, json={"reason": "核查转入学校"})
    assert held.status_code == 200, held.text

    second = start(client, "registrar1", {**base, "receiving_school_code": SCHOOL_3, "change_month": "2025-04"})
    assert second.status_code == 409
    assert f"已有未办结的“转学”（流程编号 {first.json()['id']}，已暂停）" in second.json()["message"]
    resumed = client.post(f"/api/instances/{first.json()['id']}/resume", headers=admin, json={})
    assert resumed.status_code == 200, resumed.text
    for username in ("principal1", "principal2", "reviewer"):
        complete(client, username, open_task(client, username, first.json()["id"])["id"], {"decision": "approve"})
    moved = client.get(f"/api/students/{student['id']}", headers=token(client, "registrar2")).json()
    assert moved["school_code"] == SCHOOL_2 and moved["enrolment_periods"][-1] == {
        "school_code": SCHOOL_2, "from_month": "2025-03", "to_month": None}


def test_a_month_the_sending_school_has_reported_is_refused_as_the_transfer_month(client: TestClient) -> None:
    student = admitted(client, 8)
    reported = client.post(f"/api/reports/school/{SCHOOL_1}/submit", headers=token(client, "registrar1"),
                           json={"year": 2025, "month": 3})
    assert reported.status_code == 201, reported.text
    base = {"kind": "out_of_county", "student_id": student["id"], "destination_school": "遵义市某小学"}
    refused = start(client, "registrar1", {**base, "change_month": "2025-03"})
    assert refused.status_code == 422
    assert refused.json()["details"] == [{"field": "change_month", "message": "转学年月：城关镇中心小学已上报“2025年3月”报表，"
                                          "2025-03 及以前各月的数字已冻结，转学年月须晚于 2025-03"}]
    assert start(client, "registrar1", {**base, "change_month": "2025-04"}).status_code == 201


def test_into_county_over_the_api_takes_the_certificate_as_an_attachment(client: TestClient) -> None:
    data = {"kind": "into_county", "student": student_data(seq=203, birth=born(3), school_code=SCHOOL_2,
                                                           enrolled_month="2022-09"),
            "origin_school": "遵义市某小学", "change_month": "2025-03"}
    started = start(client, "registrar2", data)
    assert started.status_code == 201, started.text
    (attach,) = started.json()["open_tasks"]
    registrar = token(client, "registrar2")
    missing = client.post(f"/api/tasks/{attach['id']}/complete", headers=registrar,
                          json={"data": {"transfer_certificate": {}}})
    assert missing.status_code == 422 and "转学证明" in missing.json()["message"]
    word = client.post(f"/api/tasks/{attach['id']}/attachments", headers=registrar,
                       files={"file": ("转学证明.docx", b"PK\x03\x04 word", "application/octet-stream")})
    assert word.status_code == 422 and "PDF、JPEG 或 PNG" in word.json()["message"]
    pdf = client.post(f"/api/tasks/{attach['id']}/attachments", headers=registrar,
                      files={"file": ("转学证明.pdf", PDF, "application/pdf")})
    assert pdf.status_code == 201
    complete(client, "registrar2", attach["id"], {"transfer_certificate": {"certificate_no": "ZX-9"}})
    complete(client, "principal2", open_task(client, "principal2", started.json()["id"])["id"], {"decision": "approve"})
    complete(client, "reviewer", open_task(client, "reviewer", started.json()["id"])["id"], {"decision": "approve"})
    student = client.get(f"/api/students/{started.json()['subject']['id']}", headers=registrar).json()
    assert student["status"] == "active"
    assert student["enrolment_periods"] == [{"school_code": SCHOOL_2, "from_month": "2025-03", "to_month": None}]


# The pages ----------------------------------------------------------------------------------------


def test_the_sending_registrar_starts_from_the_student_page(client: TestClient) -> None:
    student = admitted(client, 4)
    login(client, "registrar1")
    page = client.get(f"/students/{student['id']}")
    assert f'href="/students/{student["id"]}/transfer">办理转学' in page.text
    form = client.get(f"/students/{student['id']}/transfer")
    assert form.status_code == 200 and "城关镇第一中学" in form.text and "城关镇中心小学</option>" not in form.text
    csrf = csrf_of(form.text)

    bad = client.post(f"/students/{student['id']}/transfer",
                      data={"csrf_token": csrf, "kind": "in_county", "receiving_school_code": SCHOOL_2,
                            "change_month": "2023-08", "reason": "随父母迁居"})
    assert bad.status_code == 422
    field = re.search(r'<div class="field has-error">\s*<label for="f-change_month">.*?</div>', bad.text, re.S)
    assert field and "转学年月：不能早于入学年月 2023-09" in field.group(0) and 'value="2023-08"' in field.group(0)
    assert "随父母迁居</textarea>" in bad.text and f'value="{SCHOOL_2}" selected' in bad.text
    instances = client.get(f"/students/{student['id']}").text
    assert instances.count("/instances/") == 1  # the intake only: nothing was started

    done = client.post(f"/students/{student['id']}/transfer", follow_redirects=False,
                       data={"csrf_token": csrf, "kind": "in_county", "receiving_school_code": SCHOOL_2,
                             "change_month": "2025-03"})
    assert done.status_code == 303 and done.headers["location"].startswith("/instances/")
    instance = client.get(done.headers["location"])
    assert instance.status_code == 200 and "转出学校确认" in instance.text

    logout(client)
    login(client, "principal1")
    assert "办理转学" not in client.get(f"/students/{student['id']}").text
    assert client.get(f"/students/{student['id']}/transfer").status_code == 403
    logout(client)
    login(client, "registrar2")
    assert client.get(f"/students/{student['id']}/transfer").status_code == 404
    assert client.get(done.headers["location"]).status_code == 404  # no step at school 2 yet


def test_the_receiving_registrar_finds_the_child_by_id_number_and_sees_only_a_preview(client: TestClient) -> None:
    student = admitted(client, 5)
    full_id = client.get(f"/api/students/{student['id']}", headers=token(client, "registrar1")).json()["id_number"]
    login(client, "registrar2")
    page = client.get("/transfers/new")
    assert page.status_code == 200 and "转入学生" in page.text
    csrf = csrf_of(page.text)

    unknown = client.post("/transfers/new", data={"csrf_token": csrf, "step": "lookup", "id_number": "520102201210319999"})
    assert unknown.status_code == 422 and "本县没有该证件号的在籍学生" in unknown.text
    found = client.post("/transfers/new", data={"csrf_token": csrf, "step": "lookup", "id_number": full_id})
    assert found.status_code == 200 and "转学5" in found.text and "城关镇中心小学" in found.text
    preview = re.search(r'<dl class="summary wide-terms" id="found">.*?</dl>', found.text, re.S)
    assert preview and full_id not in preview.group(0) and "13800001234" not in found.text

    done = client.post("/transfers/new", follow_redirects=False,
                       data={"csrf_token": csrf, "step": "start", "id_number": full_id,
                             "receiving_school_code": SCHOOL_2, "change_month": "2025-09"})
    assert done.status_code == 303, done.text
    assert client.get(done.headers["location"]).status_code == 200  # started here: school 2 sees it
    twice = client.post("/transfers/new", data={"csrf_token": csrf, "step": "start", "id_number": full_id,
                                                "receiving_school_code": SCHOOL_2, "change_month": "2025-09"})
    assert twice.status_code == 409 and "已有办理中的“转学”" in twice.text

    logout(client)
    login(client, "principal1")  # the sending school confirms; its task page shows where the child goes
    instance_id = int(done.headers["location"].rsplit("/", 1)[1])
    task = open_task(client, "principal1", instance_id)
    task_page = client.get(f"/tasks/{task['id']}")
    assert "城关镇中心小学 → 城关镇第一中学，转学年月 2025-09" in task_page.text and "本申请由转入学校发起" in task_page.text


def test_into_county_page_goes_on_to_the_certificate(client: TestClient) -> None:
    login(client, "registrar2")
    page = client.get("/transfers/new/into-county")
    assert page.status_code == 200 and 'name="student.name"' in page.text
    csrf = csrf_of(page.text)
    data = student_data(seq=205, birth=born(6), school_code=SCHOOL_2, enrolled_month="2022-09")
    form = {**student_form(data, csrf), "origin_school": "遵义市某小学", "change_month": "2022-03"}
    early = client.post("/transfers/new/into-county", data=form)
    assert early.status_code == 422 and "转学年月：不能早于入学年月 2022-09" in early.text
    assert 'value="遵义市某小学"' in early.text and f'value="{data["id_number"]}"' in early.text

    done = client.post("/transfers/new/into-county", data={**form, "change_month": "2025-03"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/tasks/")
    task = client.get(done.headers["location"])
    assert "上传转学证明" in task.text and "原就读学校 遵义市某小学" in task.text
    submit = client.post(done.headers["location"], data={"csrf_token": csrf_of(task.text)})
    assert submit.status_code == 422 and "请先在“附件”中上传转学证明" in submit.text
    bad = client.post(f"{done.headers['location']}/attachments", data={"csrf_token": csrf_of(task.text)},
                      files={"file": ("证明.txt", b"plain text", "text/plain")})
    assert bad.status_code == 422 and "PDF、JPEG 或 PNG" in bad.text
    client.post(f"{done.headers['location']}/attachments", data={"csrf_token": csrf_of(task.text)},
                files={"file": ("证明.pdf", PDF, "application/pdf")})
    sent = client.post(done.headers["location"], data={"csrf_token": csrf_of(task.text),
                                                       "transfer_certificate.certificate_no": "ZX-1"},
                       follow_redirects=False)
    assert sent.status_code == 303


def test_start_pages_need_a_registrar_and_a_csrf_token(client: TestClient) -> None:
    login(client, "principal2")
    assert client.get("/transfers/new").status_code == 403
    assert "/transfers/new" not in client.get("/").text
    logout(client)
    login(client, "registrar2")
    assert 'href="/transfers/new"' in client.get("/").text
    refused = client.post("/transfers/new", data={"step": "lookup", "id_number": "x"})
    assert refused.status_code == 403
