"""The registrar's edit page of a student, and 作废 of an active record by API and on the student page."""

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit import AuditEntry
from registry.students import EnrolmentPeriod, Student
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login
from tests.factories import admit

LONG_AGO = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)  # confirmed then: key fields locked since 2023-10-20


def admitted(session: Session, **overrides: Any) -> Student:
    student = admit(session, **overrides)
    session.commit()
    return student


def audit(session: Session, student: Student, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(student.id),
                                                         AuditEntry.action == action).order_by(AuditEntry.id)))


def reload(session: Session, student: Student) -> Student:
    session.expire_all()
    fresh = session.get(Student, student.id)
    assert fresh is not None
    return fresh


def edit_form(page: str, **changes: str) -> dict[str, str]:
    """What the browser would post: every input and select of the form as rendered, then the changes."""
    form = dict(re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="(?:text|date|month|number)" value="([^"]*)"', page))
    for name, body in re.findall(r'<select id="f-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        form[name] = chosen.group(1) if chosen else ""
    for name in re.findall(r'<input type="checkbox" id="f-[^"]+" name="([^"]+)" checked>', page):
        form[name] = "on"
    for name, text in re.findall(r'<textarea id="f-[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>', page):
        form[name] = text
    form["csrf_token"] = csrf_of(page)
    form.update(changes)
    return form


# The edit page ----------------------------------------------------------------------------------


def test_the_registrar_sees_a_link_and_a_filled_form(client: TestClient, session: Session) -> None:
    student = admitted(session)
    login(client, "registrar1")
    page = client.get(f"/students/{student.id}")
    assert f'href="/students/{student.id}/edit">修改</a>' in page.text
    edit = client.get(f"/students/{student.id}/edit")
    assert edit.status_code == 200 and "修改学生信息：张小明" in edit.text
    assert 'name="class_name" type="text" value="三年级（1）班"' in edit.text
    assert 'name="reason"' in edit.text and "修改原因" in edit.text
    # Key fields are open until the lock date, which the page announces.
    assert 'name="name" type="text" value="张小明"' in edit.text and "将于" in edit.text
    # Process fields are shown, never as inputs.
    for field in ("school_code", "enrolled_month", "boarding_mode", "boarding_allowance"):
        assert f'name="{field}"' not in edit.text
    assert "城关镇中心小学（2152019901）" in edit.text and "学籍异动或转学流程" in edit.text


def test_a_correction_is_saved_with_reason_and_the_page_redirects(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=141)
    login(client, "registrar1")
    edit = client.get(f"/students/{student.id}/edit").text
    form = edit_form(edit, class_name="三年级（2）班", guardian_phone="139 0000 2222", address="", height_cm="131.5",
                     reason="分班调整")
    form.pop("migrant_child", None)
    saved = client.post(f"/students/{student.id}/edit", data={**form, "migrant_child": "on"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/students/{student.id}?saved=1"
    assert "已保存修改" in client.get(saved.headers["location"]).text
    fresh = reload(session, student)
    assert (fresh.class_name, fresh.guardian_phone, fresh.height_cm, fresh.migrant_child) == (
        "三年级（2）班", "13900002222", 131.5, True)
    [entry] = audit(session, student, "student.update")
    assert entry.reason == "分班调整" and entry.actor is not None and entry.actor.username == "registrar1"
    # Only what really changed: unchanged fields posted as text ("3" for grade 3) are not changes.
    # Class and migrant count from this month on: the enrolment periods were restated with them.
    assert set(entry.after) == {"class_name", "guardian_phone", "height_cm", "migrant_child", "enrolment_periods"}


def test_a_field_can_be_cleared(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=143, address="某村某组")
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, address="", reason="住址不详，先清空")
    assert client.post(f"/students/{student.id}/edit", data=form, follow_redirects=False).status_code == 303
    assert reload(session, student).address is None


def test_errors_come_back_beside_their_fields_with_the_input_kept_and_nothing_written(
        client: TestClient, session: Session) -> None:
    student = admitted(session, seq=145)
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, class_name="三年级（9）班",
                     guardian_phone="123", height_cm="一米三", reason="")
    refused = client.post(f"/students/{student.id}/edit", data=form)
    assert refused.status_code == 422
    page = refused.text
    assert re.search(r'name="guardian_phone".*?class="error"[^>]*>监护人电话：“123”不是手机号', page, re.S)
    assert re.search(r'name="height_cm".*?class="error"[^>]*>身高：“一米三”不是数字', page, re.S)
    assert re.search(r'name="reason".*?class="error"[^>]*>修改原因：必填', page, re.S)
    assert 'value="三年级（9）班"' in page and 'value="123"' in page
    fresh = reload(session, student)
    assert (fresh.class_name, fresh.guardian_phone) == ("三年级（1）班", "13800001234")
    assert audit(session, student, "student.update") == []


def test_a_missing_reason_alone_is_refused(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=147)
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, class_name="三年级（5）班", reason="  ")
    refused = client.post(f"/students/{student.id}/edit", data=form)
    assert refused.status_code == 422 and "修改原因：必填" in refused.text and 'value="三年级（5）班"' in refused.text
    assert reload(session, student).class_name == "三年级（1）班"


def test_text_longer_than_the_database_column_is_refused_beside_the_field(client: TestClient,
                                                                          session: Session) -> None:
    student = admitted(session, seq=149)
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, class_name="班" * 41, reason="x")
    refused = client.post(f"/students/{student.id}/edit", data=form)
    assert refused.status_code == 422
    assert re.search(r'name="class_name".*?class="error"[^>]*>班级：不能超过 40 个字', refused.text, re.S)


def test_an_id_number_live_elsewhere_is_refused_beside_the_field(client: TestClient, session: Session) -> None:
    other = admitted(session, seq=151)
    student = admitted(session, seq=153)
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, id_number=other.id_number, reason="更正")
    refused = client.post(f"/students/{student.id}/edit", data=form)
    assert refused.status_code == 409
    assert re.search(r'name="id_number".*?class="error"[^>]*>身份证件号：县内已有', refused.text, re.S)


def test_locked_key_fields_are_read_only_and_name_the_process(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=155, now=LONG_AGO)
    login(client, "registrar1")
    edit = client.get(f"/students/{student.id}/edit").text
    assert "关键信息（已锁定）" in edit and "2023-10-20" in edit and "key_field_change" in edit
    for field in ("name", "sex", "birth_date", "id_type", "id_number"):
        assert f'name="{field}"' not in edit
    assert '<dd id="ro-sex">1 男</dd>' in edit and '<dd id="ro-id_type">1 居民身份证</dd>' in edit
    # A key field or a process field posted anyway is not part of the form and changes nothing.
    form = edit_form(edit, name="张冒名", school_code="2152019902", boarding_mode="2", class_name="三年级（4）班",
                     reason="调班")
    assert client.post(f"/students/{student.id}/edit", data=form, follow_redirects=False).status_code == 303
    fresh = reload(session, student)
    assert (fresh.name, fresh.school.code, fresh.boarding_mode, fresh.class_name) == (
        "张小明", "2152019901", "1", "三年级（4）班")


def test_unlocked_key_fields_are_corrected_on_the_page(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=157)
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, name="张晓明", reason="户口簿为“晓”")
    assert client.post(f"/students/{student.id}/edit", data=form, follow_redirects=False).status_code == 303
    assert reload(session, student).name == "张晓明"


def test_nothing_changed_writes_nothing(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=159)
    login(client, "registrar1")
    form = edit_form(client.get(f"/students/{student.id}/edit").text, reason="核对")
    assert client.post(f"/students/{student.id}/edit", data=form, follow_redirects=False).status_code == 303
    assert audit(session, student, "student.update") == []


def test_only_the_registrar_of_the_school_edits(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=161)
    for username, status in (("principal1", 403), ("reviewer", 403), ("registrar2", 404)):
        client.cookies.clear()
        login(client, username)
        assert client.get(f"/students/{student.id}/edit").status_code == status, username
        page = client.get("/students")
        posted = client.post(f"/students/{student.id}/edit", data={"csrf_token": csrf_of(page.text),
                                                                    "class_name": "x班", "reason": "x"})
        assert posted.status_code == status, username
        assert "修改学生信息：" not in posted.text
        assert ("只有本校学籍管理员可以修改学生信息" in posted.text) is (status == 403)
    login(client, "principal1")
    assert f'/students/{student.id}/edit"' not in client.get(f"/students/{student.id}").text


def test_a_post_without_csrf_is_refused(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=163)
    login(client, "registrar1")
    refused = client.post(f"/students/{student.id}/edit", data={"class_name": "x班", "reason": "x"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert reload(session, student).class_name == "三年级（1）班"


def test_records_not_in_school_cannot_be_edited(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=165)
    auth = token(client, "reviewer")
    assert client.post(f"/api/students/{student.id}/void", headers=auth, json={"reason": "误录"}).status_code == 200
    login(client, "registrar1")
    page = client.get(f"/students/{student.id}/edit")
    assert page.status_code == 409 and "已作废的学生信息不能直接修改" in page.text
    assert "修改</a>" not in client.get(f"/students/{student.id}").text
    assert client.get("/students/2000000000/edit").status_code == 404


# 作废 through the API ---------------------------------------------------------------------------


def test_the_reviewer_voids_an_active_record_by_api(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=171)
    response = client.post(f"/api/students/{student.id}/void", headers=token(client, "reviewer"),
                           json={"reason": "重复录入"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["status_label"], body["void_reason"]) == (
        student.id, "voided", "已作废", "重复录入")
    assert body["enrolment_periods"] == [{"school_code": "2152019901", "from_month": "2023-09", "to_month": "2023-08"}]
    assert [e.reason for e in audit(session, student, "student.void")] == ["重复录入"]
    again = client.post(f"/api/students/{student.id}/void", headers=token(client, "reviewer"),
                        json={"reason": "重复录入"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


def test_void_errors_follow_the_api_conventions(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=173)
    reviewer = token(client, "reviewer")
    url = f"/api/students/{student.id}/void"
    cases = [
        (token(client, "registrar1"), {"reason": "误录"}, 403, "permission_denied"),
        (token(client, "registrar2"), {"reason": "误录"}, 404, "not_found"),
        (reviewer, {"reason": "  "}, 422, "rule_violation"),
        (reviewer, {}, 422, "rule_violation"),
        (reviewer, {"reason": 5}, 422, "invalid_request"),
    ]
    for auth, body, status, code in cases:
        response = client.post(url, headers=auth, json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), (body, response.text)
    blank = client.post(url, headers=reviewer, json={"reason": ""}).json()
    assert blank["message"] == "作废原因：必填" and blank["details"] == [{"field": "reason", "message": "作废原因：必填"}]
    assert client.post("/api/students/2000000000/void", headers=reviewer, json={"reason": "x"}).status_code == 404
    assert client.post(url, json={"reason": "x"}).status_code == 401
    assert reload(session, student).status == "active"


def test_a_pending_record_is_voided_by_the_intake_not_here(client: TestClient) -> None:
    from tests.factories import student_data

    started = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar1"),
                          json={"data": {"student": student_data(seq=175)}})
    student_id = started.json()["subject"]["id"]
    response = client.post(f"/api/students/{student_id}/void", headers=token(client, "reviewer"),
                           json={"reason": "误录"})
    assert response.status_code == 409 and "录入流程" in response.json()["message"]


# 作废 on the student page -----------------------------------------------------------------------


def test_the_reviewer_voids_on_the_student_page(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=181)
    login(client, "reviewer")
    page = client.get(f"/students/{student.id}")
    assert f'action="/students/{student.id}/void"' in page.text and 'name="reason"' in page.text
    assert "confirm(" in page.text and "修改</a>" not in page.text
    refused = client.post(f"/students/{student.id}/void", data={"csrf_token": csrf_of(page.text), "reason": " "})
    assert refused.status_code == 422
    assert re.search(r'id="void-reason".*?class="error"[^>]*>作废原因：必填', refused.text, re.S)
    done = client.post(f"/students/{student.id}/void", data={"csrf_token": csrf_of(refused.text),
                                                             "reason": "查无此人（抽查核实）"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/students/{student.id}?voided=1"
    after = client.get(done.headers["location"]).text
    assert "已作废" in after and "作废原因：查无此人（抽查核实）" in after and "不计补助（原自 2023年9月起）" in after
    assert f'action="/students/{student.id}/void"' not in after
    periods = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)).all()
    assert [(p.from_month, p.to_month) for p in periods] == [("2023-09", "2023-08")]


def test_the_void_form_is_only_for_the_county(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=183)
    for username in ("registrar1", "principal1", "township1", "auditor"):
        client.cookies.clear()
        login(client, username)
        page = client.get(f"/students/{student.id}")
        assert "/void" not in page.text, username
        posted = client.post(f"/students/{student.id}/void", data={"csrf_token": csrf_of(page.text), "reason": "x"})
        assert posted.status_code == 403, username
    client.cookies.clear()
    login(client, "admin")
    assert f'action="/students/{student.id}/void"' in client.get(f"/students/{student.id}").text
    assert reload(session, student).status == "active"


def test_voiding_on_the_page_without_csrf_changes_nothing(client: TestClient, session: Session) -> None:
    student = admitted(session, seq=185)
    login(client, "reviewer")
    assert client.post(f"/students/{student.id}/void", data={"reason": "误录"}).status_code == 403
    assert reload(session, student).status == "active"
