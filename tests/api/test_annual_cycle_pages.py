"""The autumn cycle's task page: the links the registrar works from, the scan upload, the county's view and the
filed rosters on the county report."""

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import annual_cycle, attachments, workflows
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout
from tests.factories import make_school, make_user, user

SCHOOL = "2152019983"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_the_registrar_works_the_cycle_from_the_task_page(client: TestClient, session: Session) -> None:
    make_school(session, code=SCHOOL, name="页面测试小学")
    make_user(session, "cycle_page_registrar", role="school_registrar", org_unit_code=SCHOOL)
    (instance_id,) = [i for i in annual_cycle.arm(session, now=datetime(2026, 8, 20, tzinfo=UTC))
                      if session.get(ProcessInstance, i).org_unit.code == SCHOOL]
    workflows.advance_instance(session, instance_id=instance_id, now=datetime(2026, 9, 1, tzinfo=UTC))
    session.commit()
    roster = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.task_id == "upload_roster",
                                                     HumanTask.status == TaskStatus.open)).one()
    login(client, "cycle_page_registrar")
    page = client.get(f"/tasks/{roster.id}")
    assert page.status_code == 200, page.text
    assert "页面测试小学 2026–2027 学年" in page.text and "花名册签字盖章并上传" in page.text
    assert f"/schools/{SCHOOL}/roster?year=2026" in page.text and f"/schools/{SCHOOL}/roster.pdf?year=2026" in page.text
    assert "2026年9月15日" in page.text  # the deadline of Art. 16

    # The page's form: the scan is a file field of the form itself.
    assert 'type="file"' in page.text and 'enctype="multipart/form-data"' in page.text
    csrf = csrf_of(page.text)
    missing = client.post(f"/tasks/{roster.id}", data={"csrf_token": csrf, "cycle_roster.confirmed": "on"})
    assert missing.status_code == 422 and "花名册扫描件" in missing.text
    wrong = client.post(f"/tasks/{roster.id}", data={"csrf_token": csrf, "cycle_roster.confirmed": "on",
                                                     "cycle_roster.comment": "已签字"},
                        files={"cycle_roster.scan": ("花名册.txt", b"not a scan", "text/plain")})
    assert wrong.status_code == 422 and "只能上传 PDF、JPEG 或 PNG" in wrong.text
    assert "已签字" in wrong.text  # the typed comment comes back
    # A scan sent with an unticked box: refused, but the scan is kept and the page carries it.
    kept = client.post(f"/tasks/{roster.id}", data={"csrf_token": csrf},
                       files={"cycle_roster.scan": ("花名册.pdf", PDF, "application/pdf")})
    assert kept.status_code == 422 and "花名册.pdf" in kept.text
    scan_ids = re.search(r'name="cycle_roster.scan:kept" value="([0-9,]+)"', kept.text)
    assert scan_ids, kept.text
    done = client.post(f"/tasks/{roster.id}", data={"csrf_token": csrf, "cycle_roster.confirmed": "on",
                                                    "cycle_roster.scan:kept": scan_ids.group(1)},
                       follow_redirects=False)
    assert done.status_code == 303, done.text

    # Through the API: upload first, then send the ids.
    headers = token(client, "cycle_page_registrar")
    report = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.task_id == "submit_report")).one()
    sent = client.post(f"/api/tasks/{report.id}/complete", json={"data": {"cycle_report": {"confirmed": True}}},
                       headers=headers)
    assert sent.status_code == 200, sent.text


def open_task(session: Session, instance_id: int, task_id: str) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id, HumanTask.task_id == task_id,
                                                   HumanTask.status == TaskStatus.open)).one()


def test_the_county_report_shows_which_scan_is_on_file(client: TestClient, session: Session) -> None:
    make_school(session, code=SCHOOL, name="页面测试小学")
    registrar = make_user(session, "cycle_page_registrar", role="school_registrar", org_unit_code=SCHOOL)
    reviewer = user(session, "reviewer")
    (instance_id,) = [i for i in annual_cycle.arm(session, now=datetime(2026, 8, 20, tzinfo=UTC))
                      if session.get(ProcessInstance, i).org_unit.code == SCHOOL]
    workflows.advance_instance(session, instance_id=instance_id, now=datetime(2026, 9, 1, tzinfo=UTC))
    day = datetime(2026, 9, 12, 2, 0, tzinfo=UTC)
    scans = []
    for file_name, decision in (("花名册（第一次）.pdf", {"decision": "return", "comment": "缺学校公章"}),
                                ("花名册（补盖章）.pdf", {"decision": "approve"})):
        roster = open_task(session, instance_id, "upload_roster")
        scans.append(attachments.attach(session, actor=registrar, task_id=roster.id, file_name=file_name, data=PDF,
                                        store=client.app.state.files))
        workflows.complete_task(session, actor=registrar, task_id=roster.id,
                                data={"cycle_roster": {"confirmed": True, "scan": [scans[-1].id]}}, now=day)
        workflows.complete_task(session, actor=registrar, task_id=open_task(session, instance_id, "submit_report").id,
                                data={"cycle_report": {"confirmed": True}}, now=day)
        workflows.complete_task(session, actor=reviewer, task_id=open_task(session, instance_id, "review_cycle").id,
                                data=decision, now=day)
    session.commit()
    first, second = scans

    login(client, "reviewer")
    page = client.get("/reports?year=2026")
    assert page.status_code == 200, page.text
    assert "花名册备案" in page.text
    row = re.search(rf'<tr><th scope="row"><a href="/reports\?school={SCHOOL}[^"]*">页面测试小学</a>.*?</tr>', page.text, re.S)
    assert row, page.text
    assert "已备案 2026年9月12日" in row.group(0) and "花名册（补盖章）.pdf" in row.group(0)
    assert f'href="/api/attachments/{second.id}"' in row.group(0) and f"/api/attachments/{first.id}" not in row.group(0)
    assert "未备案" in page.text  # the demo schools have filed nothing
    scan = client.get(f"/api/attachments/{second.id}")
    assert scan.status_code == 200 and scan.content == PDF
    assert "花名册备案" not in client.get("/reports?year=2026&month=10").text  # a month has no filing column

    # The school's task page, where 新生录入 is still open, names the filed scan too.
    logout(client)
    login(client, "cycle_page_registrar")
    task = client.get(f"/tasks/{open_task(session, instance_id, 'enter_new_students').id}")
    assert task.status_code == 200 and "花名册已于 2026年9月12日 备案。" in task.text
    assert "备案的扫描件：" in task.text and f'<a href="/api/attachments/{second.id}">花名册（补盖章）.pdf</a>' in task.text
