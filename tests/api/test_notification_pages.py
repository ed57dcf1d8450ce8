"""The bell, the notifications page and API, preferences, county_admin's outbox and calendar, and moving a
task's due date from its page — through HTTP, CSRF on every form, nobody sees another's messages."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import notifications, workflows
from registry.audit import AuditEntry
from registry.db import utcnow
from registry.notifications import Channel, Kind, Notification, Status
from registry.org_units import find_org_unit
from registry.workflows import HumanTask, TaskStatus
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login
from tests.factories import student_data, user

BELL = re.compile(r'<a class="bell" href="/notifications" aria-label="通知：(\d+) 条未读">')


def tell(session: Session, username: str, n: int = 1, *, subject: str = "测试") -> list[int]:
    recipient = user(session, username)
    for i in range(n):
        message = notifications.render(Kind.reminder, key=f"test:{username}:{subject}:{i}", link="/tasks",
                                       title=f"{subject}{i}", subject_label="", org_unit="城关镇中心小学", role="校长",
                                       due="2026年9月4日 10:00", claimed=False, days=1,
                                       org_unit_id=find_org_unit(session, code="2152019901").id)
        notifications.send(session, message=message, recipients=[recipient.id])
    session.commit()
    return [n.id for n in session.scalars(select(Notification).where(Notification.recipient_id == recipient.id))]


def bell(html: str) -> int:
    match = BELL.search(html)
    assert match, "no bell in the header"
    return int(match[1])


def test_the_bell_counts_unread_messages_on_every_page_and_reading_one_lowers_it(client: TestClient,
                                                                                session: Session) -> None:
    tell(session, "principal1", 3)
    tell(session, "principal2", 2)
    login(client, "principal1")
    for path in ("/", "/tasks", "/students"):
        assert bell(client.get(path).text) == 3, path
    page = client.get("/notifications")
    assert page.status_code == 200 and page.text.count('class="unread"') == 3 and "测试0" in page.text
    first = session.scalars(select(Notification).where(Notification.recipient_id == user(session, "principal1").id)
                            .order_by(Notification.id)).first()
    refused = client.post(f"/notifications/{first.id}/read", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    done = client.post(f"/notifications/{first.id}/read", data={"csrf_token": csrf_of(page.text), "go": "1"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/tasks"
    assert bell(client.get("/").text) == 2
    assert client.get("/notifications?unread=1").text.count('class="unread"') == 2
    client.post("/notifications/read-all", data={"csrf_token": csrf_of(page.text)})
    home = client.get("/").text
    assert bell(home) == 0 and 'id="bell-count"' not in home


def test_nobody_reads_or_marks_another_users_messages(client: TestClient, session: Session) -> None:
    (theirs,) = tell(session, "principal2")
    login(client, "principal1")
    page = client.get("/notifications")
    assert "测试0" not in page.text
    response = client.post(f"/notifications/{theirs}/read", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 404
    headers = token(client, "principal1")
    assert client.post(f"/api/notifications/{theirs}/read", headers=headers).status_code == 404


def test_the_api_lists_and_marks_read(client: TestClient, session: Session) -> None:
    ids = tell(session, "registrar1", 2)
    headers = token(client, "registrar1")
    listed = client.get("/api/notifications", headers=headers).json()
    assert listed["total"] == 2 and listed["unread"] == 2
    assert listed["items"][0]["subject"].startswith("【待办提醒】测试1") and listed["items"][0]["link"] == "/tasks"
    read = client.post(f"/api/notifications/{ids[0]}/read", headers=headers).json()
    assert read["read_at"] is not None
    assert client.get("/api/notifications?unread=true", headers=headers).json()["total"] == 1
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.action == "notification.read")).all()


def test_preferences_are_saved_checked_and_audited(client: TestClient, session: Session) -> None:
    login(client, "principal1")
    page = client.get("/notifications/preferences")
    assert page.status_code == 200
    form = {"csrf_token": csrf_of(page.text), "in_app": "1", "email": "1", "email_address": "not-an-address",
            "webhook": "1", "webhook_url": "ftp://bot", "digest": "1"}
    bad = client.post("/notifications/preferences", data=form)
    assert bad.status_code == 422 and "电子邮箱：格式不正确" in bad.text and "Webhook 地址" in bad.text
    form.update(email_address="wang@school.example.cn", webhook_url="https://qyapi.example.cn/cgi-bin/webhook/send?key=1")
    assert client.post("/notifications/preferences", data={**form, "csrf_token": "x"}).status_code == 403
    saved = client.post("/notifications/preferences", data=form, follow_redirects=False)
    assert saved.status_code == 303
    prefs = notifications.preferences_of(session, user_id=user(session, "principal1").id)
    assert (prefs.email_address, prefs.webhook, prefs.digest) == ("wang@school.example.cn", True, True)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "notification.preferences")).one()
    assert entry.after["digest"] is True
    api = client.get("/api/notifications/preferences", headers=token(client, "principal1")).json()
    assert api["email_address"] == "wang@school.example.cn"


def test_the_outbox_is_county_admins_and_shows_failures_with_a_retry(client: TestClient, session: Session) -> None:
    notifications.update_preferences(session, actor=user(session, "principal1"), preferences=notifications.Preferences(
        email_address="wang@school.example.cn"))
    ids = tell(session, "principal1", 2, subject="外发")
    mails = session.scalars(select(Notification).where(Notification.id.in_(ids), Notification.channel == Channel.email)
                            .order_by(Notification.id)).all()
    mails[0].transport, mails[0].status = "outbox", Status.sent
    mails[1].status, mails[1].attempts, mails[1].last_error = Status.failed, 5, "SMTP：ConnectionRefusedError"
    session.commit()
    login(client, "reviewer")
    assert client.get("/notifications/outbox").status_code == 403
    login(client, "admin")
    outbox = client.get("/notifications/outbox")
    assert outbox.status_code == 200 and "外发0" in outbox.text and "wang@school.example.cn" in outbox.text
    failed = client.get("/notifications/outbox?view=failed")
    assert "SMTP：ConnectionRefusedError" in failed.text and "重新发送" in failed.text
    retried = client.post(f"/notifications/{mails[1].id}/retry", data={"csrf_token": csrf_of(failed.text)},
                          follow_redirects=False)
    assert retried.status_code == 303
    session.refresh(mails[1])
    assert mails[1].status == Status.pending and mails[1].attempts == 0
    assert client.get("/notifications/outbox?view=nonsense").status_code == 422


def test_county_admin_keeps_the_working_day_calendar(client: TestClient, session: Session) -> None:
    login(client, "principal1")
    assert client.get("/calendar").status_code == 403
    login(client, "admin")
    page = client.get("/calendar")
    assert page.status_code == 200
    bad = client.post("/calendar", data={"csrf_token": csrf_of(page.text), "day": "2026-13-01", "note": "x"})
    assert bad.status_code == 422 and "日期" in bad.text
    added = client.post("/calendar", data={"csrf_token": csrf_of(page.text), "day": "2026-11-16", "working": "0",
                                           "note": "苗年放假"}, follow_redirects=False)
    assert added.status_code == 303
    year = client.post("/calendar", data={"csrf_token": csrf_of(page.text), "year": "2027", "note": "按国办通知录入"},
                       follow_redirects=False)
    assert year.status_code == 303
    shown = client.get("/calendar").text
    assert "2026-11-16" in shown and "苗年放假" in shown and "2027 年" in shown


def _review_task(session: Session) -> HumanTask:
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(seq=771)})
    session.commit()
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()


def test_a_supervisor_moves_a_due_date_on_the_task_page_and_the_principal_is_told(client: TestClient,
                                                                                   session: Session) -> None:
    task = _review_task(session)
    login(client, "principal1")
    assert "调整截止时间" not in client.get(f"/tasks/{task.id}").text  # not one's own deadline
    login(client, "reviewer")
    page = client.get(f"/tasks/{task.id}")
    assert "调整截止时间" in page.text
    new_day = (utcnow() + timedelta(days=10)).date()
    missing = client.post(f"/tasks/{task.id}/due", data={"csrf_token": csrf_of(page.text),
                                                         "due_date": new_day.isoformat(), "reason": ""})
    assert missing.status_code == 422 and "调整原因" in missing.text
    moved = client.post(f"/tasks/{task.id}/due", data={"csrf_token": csrf_of(page.text),
                                                       "due_date": new_day.isoformat(), "reason": "开学事务多，延期"},
                        follow_redirects=False)
    assert moved.status_code == 303
    assert "截止时间已调整" in client.get(moved.headers["location"]).text
    login(client, "principal1")
    assert bell(client.get("/").text) == 1
    assert "【截止时间变更】" in client.get("/notifications").text


def test_the_api_moves_a_due_date_and_refuses_the_task_holder(client: TestClient, session: Session) -> None:
    task = _review_task(session)
    new_day = (utcnow() + timedelta(days=7)).date().isoformat()
    own = client.post(f"/api/tasks/{task.id}/due", json={"due_date": new_day, "reason": "x"},
                      headers=token(client, "principal1"))
    assert own.status_code == 403 and own.json()["code"] == "permission_denied"
    other_school = client.post(f"/api/tasks/{task.id}/due", json={"due_date": new_day, "reason": "x"},
                               headers=token(client, "principal2"))
    assert other_school.status_code == 404
    bad = client.post(f"/api/tasks/{task.id}/due", json={"due_date": "soon", "reason": "x"},
                      headers=token(client, "township1"))
    assert bad.status_code == 422
    ok = client.post(f"/api/tasks/{task.id}/due", json={"due_date": new_day, "reason": "校长外出"},
                     headers=token(client, "township1"))
    assert ok.status_code == 200 and ok.json()["due_at"].startswith(new_day)


def test_escalated_tasks_show_on_the_county_home_page(client: TestClient, session: Session) -> None:
    from registry.task_reminders import TaskReminder

    task = _review_task(session)
    session.get(TaskReminder, task.id).escalated_at = utcnow()
    session.commit()
    login(client, "reviewer")
    home = client.get("/").text
    assert 'id="escalated"' in home and f"/tasks/{task.id}" in home
    login(client, "registrar1")
    assert 'id="escalated"' not in client.get("/").text
