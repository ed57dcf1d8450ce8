"""关键信息变更, 学籍异动 and 毕业名单 through HTTP: the registrar's start pages (CSRF, errors beside the
fields, input kept), the reviewers' task pages, and the JSON API start shapes."""

import re
from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from registry.students import Student
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout
from tests.factories import admit, make_id_number

CONFIRMED = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def enrolled(session: Session, seq: int, birth: date, **overrides: object) -> Student:
    student = admit(session, now=CONFIRMED, seq=seq, birth=birth, name="赵小刚", **overrides)
    session.commit()
    return student


def open_task_id(client: TestClient, instance_id: int, username: str) -> int:
    instance = client.get(f"/api/instances/{instance_id}", headers=token(client, username)).json()
    (task,) = instance["open_tasks"]
    return task["id"]


def decide(client: TestClient, instance_id: int, username: str, decision: str = "approve", comment: str = "") -> None:
    task_id = open_task_id(client, instance_id, username)
    data = {"decision": decision, **({"comment": comment} if comment else {})}
    response = client.post(f"/api/tasks/{task_id}/complete", headers=token(client, username), json={"data": data})
    assert response.status_code == 200, response.text


def instance_id_of(response_location: str) -> int:
    match = re.fullmatch(r"/instances/(\d+)", response_location)
    assert match, response_location
    return int(match.group(1))


# 关键信息变更 -------------------------------------------------------------------------------------------


def test_key_field_change_from_the_student_page_to_the_county_with_old_and_new_values(client: TestClient,
                                                                                      session: Session) -> None:
    birth = date(2014, 7, 21)
    student = enrolled(session, 401, birth)
    new_id = make_id_number(birth=birth, seq=403)
    login(client, "registrar1")
    assert "申请变更关键信息" in client.get(f"/students/{student.id}").text
    page = client.get(f"/students/{student.id}/key-field-change")
    assert page.status_code == 200 and "现登记" in page.text and student.id_number in page.text
    done = client.post(f"/students/{student.id}/key-field-change", follow_redirects=False,
                       data={"csrf_token": csrf_of(page.text), "name": "赵晓刚", "id_number": new_id,
                             "reason": "户口簿已更正", "confirmed": "on"},
                       files={"file": ("监护人申请书.pdf", PDF, "application/pdf")})
    assert done.status_code == 303, done.text
    instance_id = instance_id_of(done.headers["location"])
    logout(client)

    login(client, "principal1")
    review = client.get(f"/tasks/{open_task_id(client, instance_id, 'principal1')}")
    assert review.status_code == 200
    assert "申请变更" in review.text and "赵小刚" in review.text and "赵晓刚" in review.text
    assert new_id in review.text and "监护人申请书.pdf" in review.text and "户口簿已更正" in review.text
    decide(client, instance_id, "principal1")
    logout(client)

    login(client, "reviewer")
    approve = client.get(f"/tasks/{open_task_id(client, instance_id, 'reviewer')}")
    assert "全县查重：新的身份证件号在县内没有其他在籍或待审核的学籍记录" in approve.text
    decide(client, instance_id, "reviewer")
    record = client.get(f"/api/students/{student.id}", headers=token(client, "reviewer")).json()
    assert (record["name"], record["id_number"]) == ("赵晓刚", new_id)
    history = client.get(f"/api/students/{student.id}/history", headers=token(client, "reviewer")).json()
    assert "student.key_field_change" in [e["action"] for e in history["items"]]


def test_key_field_form_errors_are_shown_beside_the_fields_with_the_input_kept(client: TestClient,
                                                                              session: Session) -> None:
    student = enrolled(session, 405, date(2014, 7, 22))
    login(client, "registrar1")
    page = client.get(f"/students/{student.id}/key-field-change")
    bad = client.post(f"/students/{student.id}/key-field-change",
                      data={"csrf_token": csrf_of(page.text), "name": "赵晓刚", "id_number": "5201022014",
                            "reason": "户口簿已更正"},
                      files={"file": ("申请书.txt", b"plain text", "text/plain")})
    assert bad.status_code == 422
    assert 'value="5201022014"' in bad.text and 'value="赵晓刚"' in bad.text and "户口簿已更正" in bad.text
    assert bad.text.count('class="error" role="alert"') >= 3  # the ID number, the scan, the confirmation
    assert "PDF、JPEG 或 PNG" in bad.text and "请核对后勾选" in bad.text
    no_csrf = client.post(f"/students/{student.id}/key-field-change",
                          data={"name": "赵晓刚", "reason": "x", "confirmed": "on"},
                          files={"file": ("a.pdf", PDF, "application/pdf")})
    assert no_csrf.status_code == 403
    assert client.get(f"/api/students/{student.id}", headers=token(client, "registrar1")).json()["name"] == "赵小刚"


def test_an_unlocked_record_is_sent_to_the_edit_page_and_others_cannot_file(client: TestClient,
                                                                           session: Session) -> None:
    fresh = admit(session, now=datetime.now(UTC), seq=407, birth=date(2014, 7, 23))
    locked = enrolled(session, 409, date(2014, 7, 24))
    login(client, "registrar1")
    assert "申请变更关键信息" not in client.get(f"/students/{fresh.id}").text
    page = client.get(f"/students/{fresh.id}/key-field-change")
    assert "尚未锁定" in page.text and f"/students/{fresh.id}/edit" in page.text and 'type="file"' not in page.text
    logout(client)
    login(client, "registrar2")
    assert client.get(f"/students/{locked.id}/key-field-change").status_code == 404
    logout(client)
    login(client, "principal1")
    assert "申请变更关键信息" not in client.get(f"/students/{locked.id}").text
    assert client.get(f"/students/{locked.id}/key-field-change").status_code == 403


def test_a_returned_application_comes_back_filled_for_revision(client: TestClient, session: Session) -> None:
    student = enrolled(session, 411, date(2014, 7, 25))
    registrar = token(client, "registrar1")
    started = client.post("/api/processes/key_field_change/instances", headers=registrar,
                          json={"data": {"student_id": student.id, "changes": {"name": "赵晓刚"},
                                         "reason": "户口簿已更正"}})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    (submit,) = started.json()["open_tasks"]
    assert submit["task_id"] == "submit_application"
    refused = client.post(f"/api/tasks/{submit['id']}/complete", headers=registrar, json={"data": {"confirmed": True}})
    assert refused.status_code == 422 and "请先上传" in refused.json()["message"]
    assert client.post(f"/api/tasks/{submit['id']}/attachments", headers=registrar,
                       files={"file": ("申请书.pdf", PDF, "application/pdf")}).status_code == 201
    assert client.post(f"/api/tasks/{submit['id']}/complete", headers=registrar,
                       json={"data": {"confirmed": True}}).status_code == 200
    decide(client, instance_id, "principal1", "return", "请写明户口簿变更日期")
    login(client, "registrar1")
    revise = client.get(f"/tasks/{open_task_id(client, instance_id, 'registrar1')}")
    assert "退回意见：请写明户口簿变更日期" in revise.text
    assert 'name="key_field_change.name" type="text" value="赵晓刚"' in revise.text
    assert "户口簿已更正" in revise.text


# 学籍异动 --------------------------------------------------------------------------------------------------


def test_status_change_page_offers_what_the_status_allows_and_keeps_input_on_error(client: TestClient,
                                                                                  session: Session) -> None:
    student = enrolled(session, 413, date(2014, 8, 21))
    login(client, "registrar1")
    assert f"/students/{student.id}/status-change" in client.get(f"/students/{student.id}").text
    page = client.get(f"/students/{student.id}/status-change")
    assert ">休学<" not in page.text  # labels follow the radio, with a leading space
    assert "休学" in page.text and "辍学" in page.text and "死亡" in page.text and 'value="active"' not in page.text
    bad = client.post(f"/students/{student.id}/status-change",
                      data={"csrf_token": csrf_of(page.text), "to_status": "suspended", "effective_month": "2023-05",
                            "reason": "因病休学一年"})
    assert bad.status_code == 422 and "早于本次在籍起始年月 2023-09" in bad.text
    assert 'value="2023-05"' in bad.text and "因病休学一年" in bad.text and 'value="suspended" checked' in bad.text
    done = client.post(f"/students/{student.id}/status-change", follow_redirects=False,
                       data={"csrf_token": csrf_of(page.text), "to_status": "suspended",
                             "effective_month": "2026-03", "reason": "因病休学一年"})
    assert done.status_code == 303
    instance_id = instance_id_of(done.headers["location"])
    again = client.post(f"/students/{student.id}/status-change",
                        data={"csrf_token": csrf_of(page.text), "to_status": "dropped_out",
                              "effective_month": "2026-03", "reason": "辍学"})
    assert again.status_code == 409 and f"流程编号 {instance_id}" in again.text
    decide(client, instance_id, "principal1")
    decide(client, instance_id, "reviewer")
    record = client.get(f"/api/students/{student.id}", headers=token(client, "registrar1")).json()
    assert record["status"] == "suspended"
    assert record["enrolment_periods"] == [{"school_code": "2152019901", "from_month": "2023-09", "to_month": "2026-02"}]
    resume = client.get(f"/students/{student.id}/status-change")
    assert 'value="active"' in resume.text and 'value="suspended"' not in resume.text


def test_a_returned_status_change_is_revised_on_the_task_page_prefilled(client: TestClient, session: Session) -> None:
    student = enrolled(session, 415, date(2014, 8, 22))
    started = client.post("/api/processes/status_change/instances", headers=token(client, "registrar1"),
                          json={"data": {"student_id": student.id, "to_status": "dropped_out",
                                         "effective_month": "2026-03", "reason": "长期未到校"}})
    assert started.status_code == 201, started.text
    instance_id = started.json()["id"]
    decide(client, instance_id, "principal1", "return", "请先劝返")
    login(client, "registrar1")
    task_id = open_task_id(client, instance_id, "registrar1")
    page = client.get(f"/tasks/{task_id}")
    assert 'type="month" value="2026-03"' in page.text and "长期未到校" in page.text
    bad = client.post(f"/tasks/{task_id}", data={"csrf_token": csrf_of(page.text), "to_status": "dropped_out",
                                                 "effective_month": "2020-01", "reason": "劝返无效"})
    assert bad.status_code == 422 and "早于本次在籍起始年月" in bad.text
    ok = client.post(f"/tasks/{task_id}", data={"csrf_token": csrf_of(page.text), "to_status": "dropped_out",
                                                "effective_month": "2026-04", "reason": "劝返无效"},
                     follow_redirects=False)
    assert ok.status_code == 303


def test_status_change_start_shapes_through_the_api(client: TestClient, session: Session) -> None:
    student = enrolled(session, 417, date(2014, 8, 23))
    registrar = token(client, "registrar1")
    bad = client.post("/api/processes/status_change/instances", headers=registrar,
                      json={"data": {"student_id": student.id, "to_status": "graduated", "effective_month": "2026-07",
                                     "reason": "毕业"}})
    assert bad.status_code == 422 and "/graduations" in bad.json()["message"]
    unknown = client.post("/api/processes/status_change/instances", headers=registrar,
                          json={"data": {"student_id": student.id, "to_status": "suspended",
                                         "effective_month": "2026-03", "reason": "x", "grade": 4}})
    assert unknown.status_code == 422 and unknown.json()["details"] == [{"field": "grade", "message": "未知字段"}]
    other = client.post("/api/processes/status_change/instances", headers=token(client, "registrar2"),
                        json={"data": {"student_id": student.id, "to_status": "suspended",
                                       "effective_month": "2026-03", "reason": "x"}})
    assert other.status_code == 404


def test_a_boarding_change_from_the_status_change_page_to_the_county_and_its_revision(client: TestClient,
                                                                                       session: Session) -> None:
    student = enrolled(session, 427, date(2014, 8, 24))
    login(client, "registrar1")
    page = client.get(f"/students/{student.id}/status-change")
    assert 'value="boarding"' in page.text and "就读方式/一补变更" in page.text
    # The two fields start from the record: a day pupil without 一补.
    assert '<option value="1" selected>1 走读</option>' in page.text
    assert '<option value="0" selected>不享受一补</option>' in page.text
    same = client.post(f"/students/{student.id}/status-change",
                       data={"csrf_token": csrf_of(page.text), "to_status": "boarding", "boarding_mode": "1",
                             "boarding_allowance": "0", "effective_month": "2026-03", "reason": "改为住校"})
    assert same.status_code == 422 and "没有要变更的内容" in same.text and "就读方式、享受一补：至少变更一项" in same.text
    assert 'value="boarding" checked' in same.text and "改为住校" in same.text
    done = client.post(f"/students/{student.id}/status-change", follow_redirects=False,
                       data={"csrf_token": csrf_of(page.text), "to_status": "boarding", "boarding_mode": "2",
                             "boarding_allowance": "0", "effective_month": "2026-03", "reason": "改为住校"})
    assert done.status_code == 303, done.text
    instance_id = instance_id_of(done.headers["location"])
    decide(client, instance_id, "principal1", "return", "请写明从哪个月起住校")
    task_id = open_task_id(client, instance_id, "registrar1")
    revise = client.get(f"/tasks/{task_id}")
    assert 'name="boarding_mode"' in revise.text and 'name="boarding_allowance"' in revise.text
    assert "请写明从哪个月起住校" in revise.text
    # The revision starts from the request as filed.
    assert 'type="month" value="2026-03"' in revise.text and "改为住校" in revise.text
    ok = client.post(f"/tasks/{task_id}", follow_redirects=False,
                     data={"csrf_token": csrf_of(revise.text), "boarding_mode": "2", "effective_month": "2026-04",
                           "reason": "自四月起住校"})
    assert ok.status_code == 303, ok.text
    decide(client, instance_id, "principal1")
    decide(client, instance_id, "reviewer")
    record = client.get(f"/api/students/{student.id}", headers=token(client, "registrar1")).json()
    assert (record["boarding_mode"], record["boarding_allowance"]) == ("2", False)


def test_boarding_change_start_shapes_through_the_api(client: TestClient, session: Session) -> None:
    student = enrolled(session, 429, date(2014, 8, 25))
    registrar = token(client, "registrar1")
    bad = client.post("/api/processes/status_change/instances", headers=registrar,
                      json={"data": {"kind": "boarding", "student_id": student.id, "boarding_allowance": True,
                                     "effective_month": "2026-03", "reason": "申请一补"}})
    assert bad.status_code == 422
    assert bad.json()["details"] == [{"field": "boarding_allowance", "message": "享受一补：本县不对走读生发放一补"}]
    started = client.post("/api/processes/status_change/instances", headers=registrar,
                          json={"data": {"kind": "boarding", "student_id": student.id, "boarding_mode": "2",
                                         "boarding_allowance": True, "effective_month": "2026-03",
                                         "reason": "改为住校并申请一补"}})
    assert started.status_code == 201, started.text


# 毕业名单 --------------------------------------------------------------------------------------------------


def test_graduation_list_page_submits_the_ticked_students_and_the_county_sees_them(client: TestClient,
                                                                                  session: Session) -> None:
    pupils = [enrolled(session, seq, date(2014, 9, 21), grade=6, class_name="六年级（3）班") for seq in (419, 421)]
    login(client, "registrar1")
    page = client.get("/graduations")
    assert page.status_code == 200 and "六年级在籍学生" in page.text
    for pupil in pupils:
        assert f'name="student_ids" value="{pupil.id}" id="s-{pupil.id}" checked' in page.text
    empty = client.post("/graduations", data={"csrf_token": csrf_of(page.text), "school_code": "2152019901",
                                              "effective_month": "2026-07"})
    assert empty.status_code == 422 and "毕业名单：没有学生" in empty.text
    assert f'value="{pupils[0].id}" id="s-{pupils[0].id}">' in empty.text  # nothing ticked stays unticked
    done = client.post("/graduations", follow_redirects=False,
                       data={"csrf_token": csrf_of(page.text), "school_code": "2152019901",
                             "effective_month": "2026-07", "student_ids": [str(pupils[0].id)]})
    assert done.status_code == 303, done.text
    instance_id = instance_id_of(done.headers["location"])
    assert "已有办理中的毕业名单" in client.get("/graduations").text
    decide(client, instance_id, "principal1")
    logout(client)
    login(client, "reviewer")
    approve = client.get(f"/tasks/{open_task_id(client, instance_id, 'reviewer')}")
    assert "毕业名单" in approve.text and "名单（1 人）" in approve.text and pupils[0].name in approve.text
    decide(client, instance_id, "reviewer")
    statuses = [client.get(f"/api/students/{p.id}", headers=token(client, "reviewer")).json()["status"] for p in pupils]
    assert statuses == ["graduated", "active"]


def test_a_graduation_list_naming_a_student_of_another_grade_is_refused_by_name(client: TestClient,
                                                                               session: Session) -> None:
    pupil = enrolled(session, 423, date(2014, 9, 22), grade=6, class_name="六年级（1）班")
    third = enrolled(session, 425, date(2017, 9, 22))
    response = client.post("/api/processes/status_change/instances", headers=token(client, "registrar1"),
                           json={"data": {"to_status": "graduated", "school_code": "2152019901",
                                          "student_ids": [pupil.id, third.id], "effective_month": "2026-07"}})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {"field": "student_ids", "message": f"赵小刚（学生编号 {third.id}）：是3年级学生，不是毕业年级（六年级）"}]
    login(client, "principal1")
    assert client.get("/graduations").status_code == 403
