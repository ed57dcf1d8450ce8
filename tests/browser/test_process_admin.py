"""The process administrator in Chromium: edit student_intake in the modeler, deploy, see the new
version taken by new instances while an old instance stays on its version. The database is shared
and committed: nothing here assumes counts or version numbers."""

import secrets
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from registry import process_admin, workflows
from registry.db import unit_of_work
from registry.workflows import ProcessInstance, ProcessVersion
from tests.browser.test_intake_pages import sign_in
from tests.factories import student_data, user


def committed_start(db_engine: Engine) -> tuple[int, int]:
    """A student_intake started by registrar1 and committed: (instance id, its version number)."""
    birth = date(2012, 3, 1) + timedelta(days=secrets.randbelow(28))
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                              data={"student": student_data(seq=100 + secrets.randbelow(800),
                                                                            birth=birth, name="流程迁移测试生")})
        return instance.id, instance.version.version


def version_of(db_engine: Engine, instance_id: int) -> int:
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        return session.get(ProcessInstance, instance_id).version.version


def open_modeler(page: Any, base: str) -> None:
    page.goto(f"{base}/processes/student_intake/edit")
    page.wait_for_selector("#modeler-canvas [data-element-id=confirm_intake]")


@pytest.fixture
def latest_intake_restored(db_engine: Engine) -> Iterator[None]:
    """Whatever student_intake version this test deploys is retired afterwards: the tests after it (in the
    same committed database) start intakes on the seeded definition and its due periods."""
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        before = workflows.latest_version(session, "student_intake").version
    yield
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        newer = session.scalars(select(ProcessVersion.version).where(
            ProcessVersion.process_id == "student_intake", ProcessVersion.version > before,
            ProcessVersion.retired_at.is_(None))).all()
        for version in newer:
            process_admin.retire_version(session, actor=user(session, "processadmin"), process_id="student_intake",
                                         version=version, reason="浏览器测试结束，恢复原定义")
        assert workflows.latest_version(session, "student_intake").version == before


@pytest.mark.usefixtures("latest_intake_restored")
def test_move_the_county_confirmation_due_period_deploy_and_start_on_the_new_version(
        browser: Any, live_server: str, db_engine: Engine, shot: Any) -> None:
    old_instance, old_version = committed_start(db_engine)
    page = sign_in(browser, live_server, "processadmin")

    page.goto(f"{live_server}/processes")
    assert page.locator("a[href='/processes/student_intake']").count() == 1
    shot(page, "60-processes")

    open_modeler(page, live_server)
    page.click("#modeler-canvas [data-element-id=confirm_intake]")
    due = page.get_by_label("办理期限")
    assert due.input_value().startswith("P")
    days = 20 + secrets.randbelow(70)
    due.fill(f"P{days}D")
    due.press("Tab")
    page.click("#btn-validate")
    page.wait_for_selector(".modeler-status:has-text('校验通过')")
    shot(page, "61-process-modeler")
    page.fill("#deploy-note", f"县级确认入库期限改为 {days} 天")
    page.click("#btn-deploy")
    page.wait_for_url("**/processes/student_intake?deployed=*")
    new_version = int(page.url.rsplit("=", 1)[1])
    assert new_version > old_version
    first_row = page.locator("table.versions tbody tr").first
    assert first_row.get_attribute("data-version") == str(new_version)
    assert f"县级确认入库期限改为 {days} 天" in first_row.inner_text()
    shot(page, "62-process-versions")

    # Only the confirmation changed: the modeler's export keeps every other element as it was.
    page.goto(f"{live_server}/processes/student_intake/diff?old={new_version - 1}&new={new_version}")
    assert page.locator("ul[data-kind=changed] li").all_inner_texts()[0].startswith("confirm_intake")
    assert page.locator("ul[data-kind=added] li").count() == 0
    page.wait_for_selector("#diff-canvas .diff-changed")
    shot(page, "63-process-diff")

    new_instance, started_on = committed_start(db_engine)
    assert started_on == new_version
    assert version_of(db_engine, old_instance) == old_version

    page.goto(f"{live_server}/processes/instances?process_id=student_intake&version={old_version}&status=running")
    assert page.locator(f"a[href='/processes/instances/{old_instance}']").count() == 1
    page.goto(f"{live_server}/processes/instances?process_id=student_intake&version={new_version}")
    assert page.locator(f"a[href='/processes/instances/{new_instance}']").count() == 1
    shot(page, "63b-process-instances")

    # The dry run lists the old instance (waiting before the changed step) as movable; nothing moves yet.
    page.goto(f"{live_server}/processes/student_intake/migrate?to={new_version}")
    row = page.locator("table.migration tr", has=page.locator(f"a[href='/processes/instances/{old_instance}']"))
    assert "可以迁移" in row.inner_text()
    shot(page, "64-process-migration-dry-run")
    assert version_of(db_engine, old_instance) == old_version

    page.goto(f"{live_server}/processes/instances/{old_instance}")
    assert f"第 {old_version} 版流程" in page.inner_text(".meta")
    page.click("#diagram summary")
    page.wait_for_selector("#diagram .step-active")
    shot(page, "65-process-instance-admin")


def test_validation_error_is_marked_on_the_element(browser: Any, live_server: str, shot: Any) -> None:
    page = sign_in(browser, live_server, "processadmin")
    open_modeler(page, live_server)
    page.click("#modeler-canvas [data-element-id=review_intake]")
    page.get_by_label("办理期限").fill("五天")
    page.get_by_label("办理期限").press("Tab")
    page.click("#btn-validate")
    page.wait_for_selector("#modeler-canvas [data-element-id=review_intake].has-error")
    assert "review_intake" in page.inner_text(".findings")
    page.fill("#deploy-note", "坏的期限")
    page.click("#btn-deploy")
    page.wait_for_selector(".modeler-status:has-text('未部署')")
    assert "/edit" in page.url
    shot(page, "66-process-modeler-error")


def test_new_process_with_a_new_form_previewed_then_deployed_downloaded_and_imported(
        browser: Any, live_server: str, shot: Any, tmp_path: Any) -> None:
    suffix = secrets.token_hex(3)
    process_id, form_name = f"pa_browser_{suffix}", f"pa_form_{suffix}"
    page = sign_in(browser, live_server, "processadmin")
    page.goto(f"{live_server}/processes/new")
    page.wait_for_selector("#modeler-canvas [data-element-id=review]")
    page.fill("#new-process-id", process_id)
    page.fill("#new-process-name", "浏览器测试流程")
    page.click("#modeler-canvas [data-element-id=review]")
    page.click("text=编辑此表单")
    page.fill("#form-name", form_name)
    page.fill("#form-json", '{"type": "object", "title": "补充材料", "required": ["note"], "properties": {'
                            '"note": {"type": "string", "title": "材料说明"}, '
                            '"kind": {"type": "string", "title": "材料类型", "enum": ["户口簿", "出生证明"]}}}')
    page.wait_for_selector(".form-preview label:has-text('材料说明 *')")
    assert page.locator(".form-preview select").count() == 1
    shot(page, "67-process-form-editor")
    page.click("#form-save")
    assert page.get_by_label("表单", exact=True).input_value() == form_name
    page.click("#btn-validate")
    page.wait_for_selector(".modeler-status:has-text('校验通过')")
    page.fill("#deploy-note", "新建流程")
    page.click("#btn-deploy")
    page.wait_for_url(f"**/processes/{process_id}?deployed=1")

    page.goto(f"{live_server}/processes/{process_id}/edit")
    page.wait_for_selector("#modeler-canvas [data-element-id=review]")
    with page.expect_download() as download:
        page.click("#btn-download")
    saved = tmp_path / "downloaded.bpmn"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert f'id="{process_id}"' in text and 'name="county_reviewer"' in text and form_name in text

    saved.write_text(text.replace('name="审核"', 'name="导入后的审核"'), encoding="utf-8")
    page.set_input_files("#import-file", str(saved))
    page.wait_for_selector(".modeler-status:has-text('已导入')")
    page.click("#modeler-canvas [data-element-id=review]")
    assert page.get_by_label("名称", exact=True).input_value() == "导入后的审核"


def test_timer_condition_and_lane_are_edited_in_plain_fields(browser: Any, live_server: str) -> None:
    page = sign_in(browser, live_server, "processadmin")
    open_modeler(page, live_server)
    page.click("#modeler-canvas [data-element-id=confirm_overdue]")
    expression = page.get_by_label("定时表达式")
    assert expression.input_value() == "P5D"
    expression.fill("P7D")
    expression.press("Tab")
    page.evaluate("window.mealrollModeler.get('selection').select("
                  "window.mealrollModeler.get('elementRegistry').get('flow_review_approve'))")
    assert page.get_by_label("条件（Python 表达式）").input_value() == 'decision == "approve"'
    page.evaluate("window.mealrollModeler.get('selection').select("
                  "window.mealrollModeler.get('elementRegistry').get('Lane_county_reviewer'))")
    role = page.get_by_label("办理角色")
    assert role.input_value() == "县营养办审核员"
    role.select_option("县学生资助管理中心")
    page.click("#btn-validate")
    page.wait_for_selector(".modeler-status:has-text('校验通过')")
    xml = page.evaluate("window.mealrollModeler.saveXML().then(r => r.xml)")
    assert '"P7D"' in xml and 'name="县学生资助管理中心"' in xml  # the diagram shows labels; the export maps them back
