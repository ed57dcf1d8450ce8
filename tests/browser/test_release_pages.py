"""A county aid-center officer asks for student data for another department, the county reviewer approves
it on the task page with the request beside the decision, and the officer downloads the watermarked file,
in a real Chromium."""

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from registry.data_releases import DataRelease
from registry.db import unit_of_work
from registry.workflows import HumanTask, TaskStatus
from tests.browser.test_intake_pages import sign_in
from tests.browser.test_student_edit_page import committed_student
from tests.factories import SCHOOL_1


def test_a_release_is_requested_approved_and_downloaded(browser: Any, live_server: str, db_engine: Engine,
                                                        shot: Callable[[Any, str], Path]) -> None:
    committed_student(db_engine, name="信息提供测试生")
    officer = sign_in(browser, live_server, "aidcenter")
    officer.goto(f"{live_server}/students")
    officer.click("text=申请导出完整数据")
    officer.wait_for_url("**/releases/new")
    officer.check(f"input[name=org_units][value='{SCHOOL_1}']")
    officer.check("input[name=fields][value=guardian_name]")
    officer.fill("#f-purpose", "县民政局留守儿童关爱服务名单核对")
    officer.fill("#f-department", "演示县民政局")
    officer.fill("#f-person", "赵科长")
    officer.fill("#f-valid-days", "3")
    shot(officer, "release-01-request-form")
    officer.click("form.release-form button[type=submit]")
    officer.wait_for_url(re.compile(r".*/releases/\d+\?submitted=1$"))
    release_id = int(re.findall(r"/releases/(\d+)", officer.url)[0])
    assert "等待县营养办审核员审批" in officer.inner_text("main")
    shot(officer, "release-02-submitted")

    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        release = session.get(DataRelease, release_id)
        assert release is not None
        number = release.number
        task_id = session.scalars(select(HumanTask.id).where(HumanTask.instance_id == release.instance_id,
                                                             HumanTask.status == TaskStatus.open)).one()
    reviewer = sign_in(browser, live_server, "reviewer")
    reviewer.goto(f"{live_server}/tasks")
    assert "演示县民政局 · 县民政局留守儿童关爱服务名单核对" in reviewer.inner_text("main")
    reviewer.goto(f"{live_server}/tasks/{task_id}")
    panel = reviewer.inner_text("section.request-panel")
    assert "县民政局留守儿童关爱服务名单核对" in panel and "监护人姓名" in panel and "赵科长" in panel
    reviewer.check("input[name=decision][value=approve]")
    shot(reviewer, "release-03-county-approval")
    reviewer.click("#diagram > summary")
    step = reviewer.locator("g.djs-element[data-element-id='approve_request']")
    step.wait_for(timeout=15_000)
    assert "step-active" in (step.get_attribute("class") or "")
    shot(reviewer, "release-03b-county-approval-diagram")
    reviewer.click("#task-form button[type=submit]")
    reviewer.wait_for_url("**/tasks?done=1")

    officer.goto(f"{live_server}/releases")
    shot(officer, "release-04-my-requests")
    with officer.expect_download() as caught:
        officer.locator("table.list tr", has_text=f"第 {number} 号").locator("text=下载").first.click()
    data = Path(caught.value.path()).read_bytes()
    rows = list(load_workbook(io.BytesIO(data))["学生名单"].iter_rows(values_only=True))
    assert rows[0][0].startswith(f"数据提供审批 第 {number} 号 · 仅限县民政局留守儿童关爱服务名单核对使用")
    assert "信息提供测试生" in [r[0] for r in rows[2:]]
    assert "监护人姓名" in rows[1] and "身份证件号" not in rows[1]
    officer.goto(f"{live_server}/releases/{release_id}")
    assert "剩余 2 次" in officer.inner_text("#download") and "下载文件" in officer.inner_text("main")
    shot(officer, "release-05-detail")
    officer.click("text=审批流程")
    officer.wait_for_url("**/instances/*")
    shot(officer, "release-06-instance")
