"""The approval sheet prints on one A4 page, and the approval pages fit a 360 px phone, in a real Chromium."""

import re
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from registry import workflows
from registry.db import unit_of_work
from registry.workflows import HumanTask, TaskStatus
from tests.browser.test_intake_pages import sign_in
from tests.factories import student_data, user

PHONE = {"width": 360, "height": 740}
A4_PRINTABLE_HEIGHT_PX = (297 - 2 * 15) / 25.4 * 96  # A4 less the sheet's 15 mm margins, in CSS px


def committed_intake(db_engine: Engine, *, steps: tuple[tuple[str, str, str], ...]) -> tuple[int, int | None]:
    """A student_intake committed for the live server, taken through `steps` (username, decision, comment; the
    registrar's step resubmits the student); returns the instance and its open task. A birth date in June 2013 and a random sequence: no other test's ID numbers,
    in a shared database that keeps earlier runs' students."""
    birth = date(2013, 6, 1) + timedelta(days=secrets.randbelow(30))
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        data = student_data(seq=100 + secrets.randbelow(800), birth=birth, name="审批表测试生",
                            grade=6, class_name="六年级（2）班")
        instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                              data={"student": data})
        for username, decision, comment in steps:
            task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                           HumanTask.status == TaskStatus.open)).one()
            form = {"student": data} if username == "registrar1" else {"decision": decision, "comment": comment}
            workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=form)
        open_task = session.scalars(select(HumanTask.id).where(HumanTask.instance_id == instance.id,
                                                               HumanTask.status == TaskStatus.open)).first()
        return instance.id, open_task


def phone_page(browser: Any, base: str, username: str) -> Any:
    page = sign_in(browser, base, username)
    page.set_viewport_size(PHONE)
    return page


def assert_fits_width(page: Any, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what}: the page is {width} px wide on a {PHONE['width']} px screen"


def test_approval_sheet_prints_on_one_a4_page(browser: Any, live_server: str, db_engine: Engine,
                                              tmp_path: Path) -> None:
    # Four steps, one of them a return for revision: the sheet still fits one page.
    instance_id, _ = committed_intake(db_engine, steps=(
        ("principal1", "return", "监护人电话与入学登记表不一致，请核对后重新提交。"),
        ("registrar1", "", ""),
        ("principal1", "approve", "经核对户口簿和入学登记表，信息属实，同意上报县营养办确认入库。"),
        ("reviewer", "approve", "已查重，县内无重复学籍，确认入库，自入学当月起享受营养改善计划补助。")))
    page = sign_in(browser, live_server, "reviewer")
    page.goto(f"{live_server}/instances/{instance_id}")
    page.screenshot(path=str(tmp_path / "instance.png"), full_page=True)
    page.click("text=打印审批表")
    page.wait_for_url(f"**/instances/{instance_id}/sheet")
    assert page.inner_text("h1") == "学生信息录入审核审批表"
    assert page.locator("table.sheet-steps tbody tr").count() == 5
    assert page.locator(".sheet-qr svg").count() == 1
    page.screenshot(path=str(tmp_path / "sheet-screen.png"), full_page=True)

    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden() and page.locator(".sheet-tools").is_hidden()
    height = page.evaluate("document.querySelector('.sheet').getBoundingClientRect().height")
    page.set_viewport_size({"width": 680, "height": 1010})  # 180 mm x 267 mm: the printable area of the A4 page
    page.screenshot(path=str(tmp_path / "sheet-print.png"), full_page=True)
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    (tmp_path / "sheet.pdf").write_bytes(pdf)
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    assert pages == 1, f"the sheet printed on {pages} pages ({height:.0f} px of {A4_PRINTABLE_HEIGHT_PX:.0f})"
    box = page.evaluate("(() => { const r = document.querySelector('.sheet-qr svg').getBoundingClientRect();"
                        " return [r.width, r.height]; })()")
    assert 90 <= box[0] <= 120 and abs(box[0] - box[1]) < 1  # about 28 mm square: a phone camera reads it


def test_approval_pages_fit_a_360_px_phone(browser: Any, live_server: str, db_engine: Engine, tmp_path: Path) -> None:
    done_id, _ = committed_intake(db_engine, steps=(("principal1", "approve", "同意"), ("reviewer", "approve", "确认入库")))
    running_id, task_id = committed_intake(db_engine, steps=())

    principal = phone_page(browser, live_server, "principal1")
    principal.goto(f"{live_server}/tasks/{task_id}")
    assert "校长审核" in principal.inner_text("h1")
    principal.screenshot(path=str(tmp_path / "task-360.png"), full_page=True)
    assert_fits_width(principal, "task page")
    # Easy to tap: the submit button is at least 44 px high, the comment box as wide as its card.
    submit = principal.locator("#task-form button[type=submit]").bounding_box()
    assert submit["height"] >= 44
    comment = principal.locator("textarea[name=comment]").bounding_box()
    card = principal.locator("#task-form").bounding_box()
    assert comment["width"] >= card["width"] - 2

    principal.goto(f"{live_server}/instances/{running_id}")
    assert "校长审核" in principal.inner_text("main")
    principal.screenshot(path=str(tmp_path / "instance-360.png"), full_page=True)
    assert_fits_width(principal, "instance page")
    # The steps table scrolls inside its own box, not the page.
    box = principal.locator("table.steps").evaluate("t => t.parentElement.clientWidth")
    assert box <= PHONE["width"]

    registrar = phone_page(browser, live_server, "registrar1")
    registrar.goto(f"{live_server}/instances/{running_id}")
    registrar.click("text=撤回这次提交")
    registrar.screenshot(path=str(tmp_path / "instance-withdraw-360.png"), full_page=True)
    assert_fits_width(registrar, "instance page with the withdraw form")
    registrar.fill("#withdraw-reason", "班级录错，撤回重录")
    registrar.click("#withdraw button[type=submit]")
    registrar.wait_for_url(f"**/instances/{running_id}?withdrawn=1")
    assert "已撤回" in registrar.inner_text("main")

    registrar.goto(f"{live_server}/instances/{done_id}/sheet")
    registrar.screenshot(path=str(tmp_path / "sheet-360.png"), full_page=True)
    assert_fits_width(registrar, "approval sheet")
