"""The issue's scenario, all through the pages in Chromium: a registrar submits intakes (a form error keeps
what was typed), a principal approves each, a county reviewer confirms them in one batch from the inbox,
and a registrar of another school can neither find nor open the student. Screenshots of the main pages
go to the screenshots folder (see conftest.py).

The database is shared with the other browser tests and may keep earlier runs' students: ID numbers use
a birth date no other test uses (2012-08-08) and random sequence numbers, names carry a random tag,
and nothing counts rows."""

import random
import re
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.browser.test_intake_pages import sign_in
from tests.conftest import DEMO_PASSWORD
from tests.factories import SCHOOL_1, make_id_number

BIRTH = date(2012, 8, 8)
TAG_CHARACTERS = "春夏秋冬梅兰竹菊松柏山河星月云雨"


def fill_intake(page: Any, *, name: str, id_number: str) -> None:
    page.fill("#f-student-name", name)
    page.select_option("#f-student-sex", "1" if int(id_number[16]) % 2 else "2")
    page.fill("#f-student-birth_date", BIRTH.isoformat())
    page.fill("#f-student-id_number", id_number)
    page.select_option("#f-student-ethnicity", "03")
    page.fill("#f-student-grade", "6")
    page.fill("#f-student-class_name", "六年级（3）班")
    page.fill("#f-student-enrolled_month", "2021-09")
    page.select_option("#f-student-boarding_mode", "2")


def submit_intake(page: Any) -> int:
    page.get_by_role("button", name="提交审核").click()
    page.wait_for_url(re.compile(r"/students/\d+\?submitted=1$"))
    assert "待审核" in page.inner_text("h1")
    found = re.search(r"/students/(\d+)", page.url)
    assert found
    return int(found[1])


def search(page: Any, term: str) -> None:
    page.get_by_label("查询").fill(term)
    page.get_by_role("button", name="查询").click()
    page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("q") == [term])


def assert_dates_fit_their_column(page: Any, how: str) -> None:
    """The sheet's time column holds 2026年9月10日 on one line, not spilling over the signature column."""
    widths = page.evaluate("[...document.querySelectorAll('table.sheet-steps td.time')]"
                           ".map(td => [td.scrollWidth, td.clientWidth])")
    assert widths and all(content <= box for content, box in widths), f"approval sheet {how}: {widths}"


def test_intake_to_batch_confirmation_and_other_school_cannot_see(browser: Any, live_server: str, shot: Any) -> None:
    rng = random.SystemRandom()
    tag = "".join(rng.choice(TAG_CHARACTERS) for _ in range(3))
    names = [f"场景{tag}{suffix}" for suffix in "甲乙丙"]
    id_numbers = [make_id_number(birth=BIRTH, seq=seq) for seq in rng.sample(range(100, 1000), 3)]

    # The registrar signs in; the first intake has a wrong check digit and comes back with everything typed.
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    registrar = context.new_page()
    registrar.goto(f"{live_server}/login")
    shot(registrar, "01-login")
    registrar.get_by_label("用户名").fill("registrar1")
    registrar.get_by_label("密码").fill(DEMO_PASSWORD)
    registrar.get_by_role("button", name="登录").click()
    registrar.wait_for_url(f"{live_server}/")

    registrar.get_by_role("link", name="录入新生").click()
    wrong_check = id_numbers[0][:-1] + ("1" if id_numbers[0][-1] == "0" else "0")
    fill_intake(registrar, name=names[0], id_number=wrong_check)
    registrar.get_by_role("button", name="提交审核").click()
    assert "校验位" in registrar.locator("#f-student-id_number ~ p.error").inner_text()
    assert registrar.input_value("#f-student-name") == names[0]
    assert registrar.input_value("#f-student-id_number") == wrong_check
    assert registrar.input_value("#f-student-birth_date") == "2012-08-08"
    assert registrar.input_value("#f-student-class_name") == "六年级（3）班"
    assert registrar.input_value("#f-student-enrolled_month") == "2021-09"
    assert registrar.input_value("#f-student-grade") == "6"
    assert registrar.input_value("#f-student-ethnicity") == "03"
    assert registrar.input_value("#f-student-boarding_mode") == "2"
    shot(registrar, "02-intake-form-error")
    registrar.fill("#f-student-id_number", id_numbers[0])
    student_ids = [submit_intake(registrar)]
    for name, id_number in zip(names[1:], id_numbers[1:], strict=True):
        registrar.get_by_role("link", name="录入新生").click()
        fill_intake(registrar, name=name, id_number=id_number)
        student_ids.append(submit_intake(registrar))

    # The principal approves each one on its task page.
    principal = sign_in(browser, live_server, "principal1")
    shot(principal, "03-home")
    for i, name in enumerate(names):
        principal.goto(f"{live_server}/tasks?tab=to_claim&sort=created")
        if i == 0:
            shot(principal, "04-inbox-to-claim")
        principal.locator("table.list tr", has_text=name).get_by_role("link", name="校长审核").click()
        assert "校长审核" in principal.inner_text("h1")
        if i == 0:
            shot(principal, "05-task-principal-review")
        principal.check("input[name=decision][value=approve]")
        principal.click("form.form-grid button[type=submit]")
        principal.wait_for_url("**/tasks?done=1")

    # The county reviewer narrows the inbox to this school's intakes and confirms all three at once.
    reviewer = sign_in(browser, live_server, "reviewer")
    reviewer.get_by_role("link", name="待办任务").click()
    reviewer.select_option("select[name=process_id]", "student_intake")
    reviewer.select_option("select[name=school_code]", SCHOOL_1)
    reviewer.select_option("select[name=sort]", "created")
    reviewer.get_by_role("button", name="筛选").click()
    reviewer.wait_for_url(re.compile(r"process_id=student_intake"))
    # Batch decisions are offered only when every listed task is the same step.
    assert reviewer.locator("form#batch").count() == 1, "no batch form: " + reviewer.inner_text("table.list")
    for name in names:
        row = reviewer.locator("table.list tr", has_text=name)
        assert "确认入库" in row.inner_text()
        row.get_by_role("checkbox").check()
    reviewer.get_by_role("radio", name="通过").check()
    reviewer.get_by_role("button", name="批量办理所选").click()
    reviewer.wait_for_url(re.compile(r"/tasks/batch\?"))
    assert "已办理 3 项：通过" in reviewer.inner_text("main")
    for name in names:
        assert "✓" in reviewer.locator("ul.results li", has_text=name).inner_text()
    shot(reviewer, "06-batch-result")

    # Back at the school: the students are 在籍, dates shown the Chinese way.
    registrar.get_by_role("link", name="学生", exact=True).click()
    search(registrar, f"场景{tag}")
    for name in names:
        assert "在籍" in registrar.locator("table.list tr", has_text=name).inner_text()
    shot(registrar, "07-students")
    registrar.get_by_role("link", name=names[0]).click()
    registrar.wait_for_url(f"**/students/{student_ids[0]}")
    assert "在籍" in registrar.inner_text("h1")
    summary = registrar.inner_text("dl.summary")
    assert "2012年8月8日" in summary and "2021年9月" in summary
    assert "2021年9月起" in registrar.inner_text("main")
    shot(registrar, "08-student")
    registrar.get_by_role("link", name="学生信息录入审核").click()
    registrar.wait_for_url(re.compile(r"/instances/\d+$"))
    assert "已完成" in registrar.inner_text("h1")
    shot(registrar, "09-instance")
    registrar.get_by_role("link", name="打印审批表").click()
    registrar.wait_for_url("**/sheet")
    assert "学生信息录入审核审批表" in registrar.inner_text("h1")
    assert "2012年8月8日" in registrar.inner_text("table.sheet-subject")
    shot(registrar, "10-approval-sheet")
    assert_dates_fit_their_column(registrar, "on screen")
    registrar.set_viewport_size({"width": 360, "height": 740})
    assert_dates_fit_their_column(registrar, "on a phone")
    registrar.emulate_media(media="print")
    registrar.set_viewport_size({"width": 680, "height": 1010})  # the printable width of an A4 page
    assert_dates_fit_their_column(registrar, "printed")
    registrar.emulate_media(media="screen")
    registrar.set_viewport_size({"width": 1280, "height": 900})
    registrar.get_by_role("link", name="批量导入").click()
    registrar.wait_for_url("**/imports")
    shot(registrar, "11-imports")

    # A registrar of another school finds nothing and cannot open the record.
    other = sign_in(browser, live_server, "registrar2")
    other.get_by_role("link", name="学生", exact=True).click()
    for term in (id_numbers[0], names[0]):
        search(other, term)
        assert "没有符合条件的学生" in other.inner_text("main") and names[0] not in other.inner_text("main")
    response = other.goto(f"{live_server}/students/{student_ids[0]}")
    assert response.status == 404
    assert "找不到页面或记录" in other.inner_text("h1") and names[0] not in other.content()
    shot(other, "12-not-found")

    reviewer.get_by_role("link", name="学校").click()
    reviewer.wait_for_url("**/schools")
    shot(reviewer, "13-schools")
    for page in (registrar, principal, reviewer, other):
        page.context.close()
