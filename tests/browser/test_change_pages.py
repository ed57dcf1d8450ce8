"""A registrar files a guardian's key-field application with its scan, and the principal reviews the old
and new values beside the scan, in a real Chromium."""

from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from registry import workflows
from registry.db import unit_of_work
from registry.students import Student
from registry.workflows import HumanTask, TaskStatus
from tests.browser.test_intake_pages import sign_in
from tests.browser.test_student_edit_page import LONG_AGO, committed_student
from tests.factories import make_id_number, user

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_key_field_application_with_its_scan_reaches_the_principal(browser: Any, live_server: str,
                                                                   db_engine: Engine, tmp_path: Path) -> None:
    student_id = committed_student(db_engine, name="变更测试生", now=LONG_AGO)
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        student = session.scalars(select(Student).where(Student.id == student_id)).one()
        birth, seq = date.fromisoformat(student.fields()["birth_date"]), int(student.id_number[14:17])
    new_id = make_id_number(birth=birth, seq=(seq + 500) % 1000)  # same parity: same sex
    page = sign_in(browser, live_server, "registrar1")
    page.goto(f"{live_server}/students/{student_id}")
    page.click("text=申请变更关键信息")
    page.wait_for_url(f"**/students/{student_id}/key-field-change")
    page.fill("#f-name", "变更后测试生")
    page.fill("#f-id_number", new_id[:-1] + ("0" if new_id[-1] != "0" else "1"))  # a wrong check digit
    page.fill("#f-reason", "户口簿已更正")
    page.check("#f-confirmed")
    page.set_input_files("#f-file", files=[{"name": "申请书.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.click("text=提交申请")
    # Refused: the message beside the ID number, the other input kept; the file is chosen again.
    assert "身份证件号" in page.inner_text("#f-id_number ~ p.error")
    assert page.input_value("#f-name") == "变更后测试生" and page.input_value("#f-reason") == "户口簿已更正"
    page.screenshot(path=str(tmp_path / "key-field-change-error.png"), full_page=True)
    page.fill("#f-id_number", new_id)
    page.set_input_files("#f-file", files=[{"name": "申请书.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.click("text=提交申请")
    page.wait_for_url("**/instances/*")
    instance_id = int(page.url.rsplit("/", 1)[-1])
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        task_id = session.scalars(select(HumanTask.id).where(HumanTask.instance_id == instance_id,
                                                             HumanTask.status == TaskStatus.open)).one()

    principal = sign_in(browser, live_server, "principal1")
    principal.goto(f"{live_server}/tasks/{task_id}")
    diff = principal.inner_text("table.diff")
    assert "变更测试生" in diff and "变更后测试生" in diff and new_id in diff
    assert "申请书.pdf" in principal.inner_text("#attachments")
    principal.screenshot(path=str(tmp_path / "key-field-change-review.png"), full_page=True)
    # The database outlives this test: leave no open task in the principal's inbox for the next one.
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance_id, reason="测试结束")


def test_a_boarding_change_is_filed_and_refused_first_with_the_values_kept(browser: Any, live_server: str,
                                                                            db_engine: Engine, shot: Any) -> None:
    student_id = committed_student(db_engine, name="住校测试生")
    page = sign_in(browser, live_server, "registrar1")
    page.goto(f"{live_server}/students/{student_id}/status-change")
    page.check("input[name=to_status][value=boarding]")
    page.fill("#f-effective_month", "2026-03")
    page.fill("#f-reason", "家远，改为住校")
    page.click("text=提交申请")
    # The record is already a day pupil without 一补: nothing to change, said beside the field.
    assert "至少变更一项" in page.inner_text("#f-boarding_mode ~ p.error")
    assert page.input_value("#f-reason") == "家远，改为住校" and page.is_checked("input[value=boarding]")
    shot(page, "75-boarding-change-error")
    page.select_option("#f-boarding_mode", "2")
    page.click("text=提交申请")
    page.wait_for_url("**/instances/*")
    assert "校长审核" in page.inner_text("main")  # the request went to the principal
    shot(page, "76-boarding-change-filed")
    instance_id = int(page.url.rsplit("/", 1)[-1])
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        workflows.withdraw(session, actor=user(session, "registrar1"), instance_id=instance_id, reason="测试结束")
