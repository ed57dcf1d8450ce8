"""The notification centre in a real Chromium: the bell's unread count, reading a message, the settings page
keeping a bad address with its Chinese error, and county_admin's outbox."""

import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from registry import notifications
from registry.db import unit_of_work
from registry.notifications import Kind
from tests.browser.test_intake_pages import sign_in
from tests.factories import SCHOOL_1, make_user


def test_the_bell_the_messages_and_the_settings(browser: Any, live_server: str, db_engine: Engine,
                                                 shot: Callable[[Any, str], Any]) -> None:
    username = f"notice_web_{secrets.token_hex(3)}"  # the shared database keeps earlier runs' users
    with unit_of_work(sessionmaker(db_engine, expire_on_commit=False)) as session:
        reader = make_user(session, username, role="school_registrar", org_unit_code=SCHOOL_1)
        for n in (1, 2):
            message = notifications.render(Kind.process_end, key=f"browser:{username}:{n}", link="/tasks",
                                           process_name="学生信息录入审核", subject_label=f"测试学生{n}",
                                           message=f"第 {n} 条：县营养办已确认入库")
            notifications.send(session, message=message, recipients=[reader.id])

    page = sign_in(browser, live_server, username)
    assert page.locator("#bell-count").inner_text() == "2"
    page.click("a.bell")
    page.wait_for_url("**/notifications")
    assert page.locator("ul.notifications li.unread").count() == 2
    shot(page, "50-notifications")
    page.locator("ul.notifications li").first.locator("button.secondary").click()  # 标为已读
    page.wait_for_url("**/notifications**")
    assert page.locator("#bell-count").inner_text() == "1"
    assert page.locator("ul.notifications li.unread").count() == 1

    page.goto(f"{live_server}/notifications/preferences")
    page.check("input[name=email]")
    page.fill("#email_address", "不是邮箱@")
    page.evaluate("document.querySelector('#email_address').type = 'text'")  # past the browser's own check
    page.click("form[action='/notifications/preferences'] button[type=submit]")
    error = page.locator("#email_address_error")
    assert "电子邮箱：格式不正确" in error.inner_text()
    assert page.locator("#email_address").input_value() == "不是邮箱@"
    shot(page, "51-notification-preferences-error")
    page.context.close()

    admin = sign_in(browser, live_server, "admin")
    admin.goto(f"{live_server}/notifications/outbox")
    assert admin.locator("h1").count() == 1
    shot(admin, "52-notification-outbox")
    admin.context.close()
