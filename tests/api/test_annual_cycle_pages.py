"""The autumn cycle's task page: the links the registrar works from, the scan upload, the county's view."""

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import annual_cycle, workflows
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login
from tests.factories import make_school, make_user

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
