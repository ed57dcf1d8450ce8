"""The English pages in a real Chromium, reached by the header's language switch: the words that are the
system's (navigation, headings, table headings, labels, code-table values, chart titles) are English; what is
data (a county's, a school's or a pupil's name) stays as it was entered. Screenshots for a person to read."""

import re
from collections.abc import Callable
from typing import Any

from tests.browser.test_intake_pages import sign_in
from tests.browser.test_report_pages import COUNTY, TAG, county  # noqa: F401 (the committed county fixture)

CJK = re.compile(r"[\u4e00-\u9fff]")


def _no_chinese(page: Any, selector: str) -> None:
    for text in page.locator(selector).all_inner_texts():
        assert not CJK.search(text), f"{selector}: {text!r}"


def test_pages_in_english(browser: Any, live_server: str, county: int,  # noqa: F811
                          shot: Callable[[Any, str], Any]) -> None:
    page = sign_in(browser, live_server, f"{TAG}_reviewer")
    page.click("a.lang")  # the header's switch: sets the `lang` cookie and comes back
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    _no_chinese(page, "header nav")

    page.goto(f"{live_server}/reports?year=2024")
    _no_chinese(page, "table.report thead")
    assert "4580.00" in page.locator("table.report tfoot").inner_text()
    shot(page, "70-en-county-report")

    page.goto(f"{live_server}/students/{county}")
    _no_chinese(page, "main h2")
    _no_chinese(page, "main dt")
    shot(page, "71-en-student")

    page.goto(f"{live_server}/dashboard?year=2024")
    page.wait_for_selector("[data-chart='months'] svg")
    _no_chinese(page, "main h2")
    assert not CJK.search(page.locator("[data-chart='months'] svg").text_content() or "")
    shot(page, "72-en-dashboard")

    page.goto(f"{live_server}/tasks")
    _no_chinese(page, "nav.tabs")
    shot(page, "73-en-inbox")

    page.goto(f"{live_server}/reports/students?year=2024&figure=subsidy_rate")  # a registry error, in English
    assert page.locator("main").inner_text().strip()
    _no_chinese(page, "main")
    shot(page, "74-en-error")
    page.context.close()
