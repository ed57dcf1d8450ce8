"""A registrar corrects a student on the edit page, and a county reviewer voids a record, in a real Chromium."""

import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from registry.db import unit_of_work
from tests.browser.test_intake_pages import sign_in
from tests.factories import admit

LONG_AGO = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)


def committed_student(db_engine: Engine, **overrides: Any) -> int:
    """An active student committed for the live server; a random birth date and sequence keep its ID
    number unique in a shared test database that keeps earlier runs' students."""
    birth = date(2015, 1, 1) + timedelta(days=secrets.randbelow(700))
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        student = admit(session, birth=birth, seq=100 + secrets.randbelow(800), **overrides)
        return student.id


def test_registrar_corrects_a_student_with_errors_beside_the_fields(browser: Any, live_server: str, db_engine: Engine,
                                                                    tmp_path: Path) -> None:
    student_id = committed_student(db_engine, name="编辑测试生")
    page = sign_in(browser, live_server, "registrar1")
    page.goto(f"{live_server}/students/{student_id}")
    page.click("text=修改")
    page.wait_for_url(f"**/students/{student_id}/edit")
    assert page.input_value("#f-name") == "编辑测试生"
    page.fill("#f-class_name", "三年级（6）班")
    page.fill("#f-guardian_phone", "123")
    page.fill("#f-reason", "监护人换了手机")
    page.click("form.form-grid button[type=submit]")
    # Refused by the server: the page comes back with the message beside the field and the input kept.
    assert "不是手机号" in page.inner_text("#f-guardian_phone ~ p.error")
    assert page.input_value("#f-class_name") == "三年级（6）班"
    assert page.input_value("#f-reason") == "监护人换了手机"
    page.screenshot(path=str(tmp_path / "student-edit-error.png"), full_page=True)
    page.fill("#f-guardian_phone", "139 0000 3333")
    page.click("form.form-grid button[type=submit]")
    page.wait_for_url(f"**/students/{student_id}?saved=1")
    assert "已保存修改" in page.inner_text("main")
    assert "三年级（6）班" in page.inner_text("dl.summary")


def test_locked_key_fields_are_shown_read_only(browser: Any, live_server: str, db_engine: Engine,
                                               tmp_path: Path) -> None:
    student_id = committed_student(db_engine, name="锁定测试生", now=LONG_AGO)
    page = sign_in(browser, live_server, "registrar1")
    page.goto(f"{live_server}/students/{student_id}/edit")
    assert page.locator("#f-name").count() == 0 and page.locator("#f-id_number").count() == 0
    assert page.inner_text("#ro-name") == "锁定测试生"
    assert "key_field_change" in page.inner_text("section.read-only")
    page.screenshot(path=str(tmp_path / "student-edit-locked.png"), full_page=True)


def test_county_reviewer_voids_a_record_after_confirming(browser: Any, live_server: str, db_engine: Engine,
                                                         tmp_path: Path) -> None:
    student_id = committed_student(db_engine, name="作废测试生")
    page = sign_in(browser, live_server, "reviewer")
    page.goto(f"{live_server}/students/{student_id}")
    page.fill("#void-reason", "与另一条记录为同一人，重复录入")
    page.screenshot(path=str(tmp_path / "student-void-form.png"), full_page=True)
    # Dismissing the confirmation keeps the record.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#void button[type=submit]")
    assert "在籍" in page.inner_text("h1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#void button[type=submit]")
    page.wait_for_url(f"**/students/{student_id}?voided=1")
    assert "已作废" in page.inner_text("h1")
    assert "不计补助" in page.inner_text("main")
    assert page.locator("#void").count() == 0
    page.screenshot(path=str(tmp_path / "student-voided.png"), full_page=True)
