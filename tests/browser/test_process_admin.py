"""The process administrator in Chromium: edit student_intake in the modeler and its properties panel
(bpmn-js-properties-panel with mealroll's provider), deploy, see the new version taken by new instances
while an old instance stays on its version. The database is shared and committed: nothing here assumes
counts or version numbers."""

import secrets
import xml.etree.ElementTree as ET
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


BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"


def open_modeler(page: Any, base: str) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})  # a county office's laptop
    page.goto(f"{base}/processes/student_intake/edit")
    page.wait_for_selector("#modeler-canvas [data-element-id=confirm_intake]")
    page.wait_for_selector("#modeler-panel .bio-properties-panel")


def select_on_canvas(page: Any, element_id: str) -> None:
    """Select an element as a person does: a click on its shape (on a lane: on its empty top right corner,
    as the palette covers its title strip; on a sequence flow: on its label)."""
    shape = page.locator(f"#modeler-canvas .djs-element[data-element-id={element_id}]")
    if element_id.startswith("flow_"):
        page.locator(f"#modeler-canvas .djs-element[data-element-id={element_id}_label]").click()
    elif element_id.startswith("Lane_"):
        box = shape.bounding_box()
        shape.click(position={"x": box["width"] - 12, "y": 12})
    else:
        shape.click()
    # The panel shows the element once its id field carries the id.
    page.wait_for_function("id => document.querySelector('#bio-properties-panel-mealroll-id')?.value === id", arg=element_id)


def deployed_bpmn(db_engine: Engine, version: int) -> ET.Element:
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        found = process_admin.get_version(session, process_id="student_intake", version=version)
        return ET.fromstring(found.bpmn.encode("utf-8"))


def spiff_properties(root: ET.Element, element_id: str) -> dict[str, str]:
    element = root.find(f".//*[@id='{element_id}']")
    assert element is not None, element_id
    return {p.get("name", ""): p.get("value", "") for p in element.iter(f"{SPIFF}property")}


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
    # The selected element's findings head its panel, in Chinese, naming the field.
    finding = page.locator("#modeler-panel [data-group-id=group-mealroll-findings] .mealroll-error")
    assert "期限" in finding.inner_text() and "五天" in finding.inner_text()
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


@pytest.mark.usefixtures("latest_intake_restored")
def test_lane_role_due_form_and_condition_set_in_the_properties_panel_reach_the_deployed_xml(
        browser: Any, live_server: str, db_engine: Engine, shot: Any) -> None:
    page = sign_in(browser, live_server, "processadmin")
    open_modeler(page, live_server)
    # Nothing selected: the panel explains itself, in Chinese, with none of Camunda's or Zeebe's groups.
    assert "点选流程图中的环节" in page.inner_text("#modeler-panel")
    assert page.get_attribute(".djs-palette [data-action='create.task']", "aria-label") == "添加环节"
    shot(page, "68a-modeler-panel-empty")

    select_on_canvas(page, "Lane_county_reviewer")
    role = page.get_by_label("办理角色")
    assert role.input_value() == "县营养办审核员"
    assert "县学生资助管理中心" in role.locator("option").all_inner_texts()
    role.select_option("县学生资助管理中心")
    shot(page, "68b-modeler-panel-lane")

    select_on_canvas(page, "confirm_intake")
    assert page.inner_text("#modeler-panel .bio-properties-panel-header-type") == "人工环节"
    groups = page.locator("#modeler-panel .bio-properties-panel-group-header-title").all_inner_texts()
    assert groups == ["基本信息", "办理"]
    days = 20 + secrets.randbelow(70)
    due = page.get_by_label("办理期限")
    due.fill(f"P{days}WD")
    due.press("Tab")
    form = page.get_by_label("表单", exact=True)
    assert form.input_value() == "review"
    form.select_option("cycle_review")
    assert page.get_by_label("表单", exact=True).input_value() == "cycle_review"
    shot(page, "68c-modeler-panel-user-task")

    select_on_canvas(page, "flow_review_approve")
    condition = page.get_by_label("条件（Python 表达式）")
    assert condition.input_value() == 'decision == "approve"'
    condition.fill("decision == 'approve' and not conflict")
    condition.press("Tab")
    assert not page.get_by_label("默认路径").is_checked()
    shot(page, "68d-modeler-panel-condition")

    select_on_canvas(page, "confirm_overdue")
    assert page.get_by_label("定时表达式").input_value() == "P5D"
    assert page.get_by_label("定时方式").input_value() == "timeDuration"
    shot(page, "68e-modeler-panel-timer")

    page.click("#btn-validate")
    page.wait_for_selector(".modeler-status:has-text('校验通过')")
    page.fill("#deploy-note", "泳道、期限、表单和条件在属性面板中修改")
    page.click("#btn-deploy")
    page.wait_for_url("**/processes/student_intake?deployed=*")
    deployed = deployed_bpmn(db_engine, int(page.url.rsplit("=", 1)[1]))

    lane = deployed.find(f".//{BPMN}lane[@id='Lane_county_reviewer']")
    assert lane is not None and lane.get("name") == "county_aid_center"  # the role code, not its label
    assert spiff_properties(deployed, "confirm_intake") == {"form": "cycle_review", "due": f"P{days}WD"}
    flow = deployed.find(f".//{BPMN}sequenceFlow[@id='flow_review_approve']")
    assert flow is not None
    assert flow.findtext(f"{BPMN}conditionExpression") == "decision == 'approve' and not conflict"
    # What the panel did not touch is as it was: the other task's instructions, the timer.
    assert spiff_properties(deployed, "review_intake") == {"form": "review", "due": "P3D"}
    timer = deployed.find(f".//{BPMN}boundaryEvent[@id='confirm_overdue']//{BPMN}timeDuration")
    assert timer is not None and timer.text == '"P5D"'


def test_ids_are_checked_in_the_panel_and_undo_restores_a_property(browser: Any, live_server: str) -> None:
    from playwright.sync_api import expect  # here: where Playwright is missing, the browser fixture skips first
    page = sign_in(browser, live_server, "processadmin")
    open_modeler(page, live_server)
    select_on_canvas(page, "review_intake")
    element_id = page.get_by_label("编号（英文）")
    element_id.fill("confirm_intake")
    element_id.press("Tab")
    assert "编号已被流程中的其他元素使用" in page.inner_text("#modeler-panel")
    element_id.fill("审核")
    element_id.press("Tab")
    assert "编号只能用英文字母" in page.inner_text("#modeler-panel")
    assert page.evaluate("window.mealrollModeler.get('elementRegistry').get('review_intake') !== undefined")

    due = page.get_by_label("办理期限")
    due.fill("P9X")
    due.press("Backspace")  # typed into the field: the diagram's Backspace (delete the element) must not fire
    due.type("D")
    due.press("Tab")
    assert page.evaluate("window.mealrollModeler.get('elementRegistry').get('review_intake') !== undefined")
    reminders = page.get_by_label("提醒规则")
    reminders.fill("-P1D,overdue-daily")
    reminders.press("Tab")
    # One undo per field (the panel re-renders a moment after the command).
    page.evaluate("window.mealrollModeler.get('commandStack').undo()")
    expect(page.get_by_label("提醒规则")).to_have_value("")
    expect(page.get_by_label("办理期限")).to_have_value("P9D")
    page.evaluate("window.mealrollModeler.get('commandStack').undo()")
    expect(page.get_by_label("办理期限")).to_have_value("P3D")
    xml = page.evaluate("window.mealrollModeler.saveXML().then(r => r.xml)")
    assert "instructionsForEndUser" in xml and "-P1D,overdue-daily" not in xml
