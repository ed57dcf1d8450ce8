"""On the task page a half-typed decision survives a change of device, and the 流程图 shows where the
instance stands, in a real Chromium; with JavaScript off the page still reads."""

import secrets
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from registry import workflows
from registry.db import unit_of_work
from registry.workflows import HumanTask, TaskStatus
from tests.browser.test_intake_pages import sign_in
from tests.factories import student_data, user


def committed_review_task(db_engine: Engine, name: str) -> int:
    """A student_intake waiting for principal1, committed for the live server. A random sequence on a
    birth date no other test uses keeps the ID number unique in a database that keeps earlier runs."""
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        instance, _ = workflows.start_process(
            session, actor=user(session, "registrar1"), process_id="student_intake",
            data={"student": student_data(seq=1 + secrets.randbelow(998), birth=date(2014, 12, 1), name=name)})
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                       HumanTask.status == TaskStatus.open)).one()
        assert task.task_id == "review_intake", task.task_id
        return task.id


def wait_for_status(page: Any, text: str) -> None:
    page.wait_for_function("t => document.getElementById('draft-status').textContent.startsWith(t)", arg=text,
                           timeout=10_000)


def test_draft_comes_back_on_another_device_and_the_diagram_marks_the_step(
        browser: Any, live_server: str, db_engine: Engine, tmp_path: Path) -> None:
    task_id = committed_review_task(db_engine, "草稿测试生")
    url = f"{live_server}/tasks/{task_id}"
    page = sign_in(browser, live_server, "principal1")
    page.goto(url)
    page.check("input[name=decision][value=return]")
    page.fill("textarea[name=comment]", "监护人电话少一位")
    wait_for_status(page, "草稿已保存")
    # The connection drops while typing: the page says so, and saves once it is back.
    page.context.set_offline(True)
    page.type("textarea[name=comment]", "，请核实")
    wait_for_status(page, "离线，稍后重试")
    page.context.set_offline(False)
    wait_for_status(page, "草稿已保存")
    page.screenshot(path=str(tmp_path / "task-draft-saved.png"))

    # Another device: a fresh browser context with its own session, nothing cached.
    other = sign_in(browser, live_server, "principal1")
    other.goto(url)
    assert other.input_value("textarea[name=comment]") == "监护人电话少一位，请核实"
    assert other.is_checked("input[name=decision][value=return]")
    # Both show the server's time in the county's zone, whatever the browser's own (UTC here).
    saved_at = page.inner_text("#draft-status").removeprefix("草稿已保存 ")
    assert f"{saved_at} 保存的草稿" in other.inner_text("#draft-note")

    requests: list[str] = []
    failures: list[str] = []
    other.on("request", lambda r: requests.append(r.url))
    other.on("requestfailed", lambda r: failures.append(r.url))
    other.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    other.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    other.click("#diagram > summary")
    active = other.locator("g.djs-element[data-element-id='review_intake']")
    active.wait_for(timeout=15_000)
    assert "step-active" in (active.get_attribute("class") or "")
    done = other.locator("g.djs-element[data-element-id='check_duplicates']")
    assert "step-completed" in (done.get_attribute("class") or "")
    assert "step-active" not in (other.locator("g.djs-element[data-element-id='confirm_intake']")
                                 .get_attribute("class") or "")
    lanes = other.locator("g.djs-element[data-element-id='Lane_school_principal']")
    lane_text = lanes.text_content() or ""
    assert "校长" in lane_text and "school_principal" not in lane_text
    # The viewer came once, fingerprinted, from this server: no CDN, nothing missing (no icon font needed).
    assert len([u for u in requests if "bpmn-viewer" in u]) == 1
    assert all(u.startswith(live_server) and ("?v=" in u or "/api/" in u) for u in requests), requests
    assert not failures, failures
    other.locator("#diagram").screenshot(path=str(tmp_path / "task-diagram.png"))
    other.screenshot(path=str(tmp_path / "task-page-diagram-open.png"), full_page=True)


def test_task_page_reads_without_javascript(browser: Any, live_server: str, db_engine: Engine,
                                            tmp_path: Path) -> None:
    task_id = committed_review_task(db_engine, "无脚本测试生")
    context = browser.new_context(locale="zh-CN", java_script_enabled=False, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("#username", "principal1")
    page.fill("#password", "demo-pass-2026")
    page.click("form[action='/login'] button[type=submit]")
    page.goto(f"{live_server}/tasks/{task_id}")
    assert "无脚本测试生" in page.inner_text("h1")
    page.click("#diagram > summary")
    steps = page.inner_text("ol.steps")
    assert "名单查重（已完成）" in steps and "校长审核（当前步骤）" in steps
    assert page.locator(".diagram-view").is_hidden()
    page.screenshot(path=str(tmp_path / "task-page-no-js.png"), full_page=True)
    context.close()
