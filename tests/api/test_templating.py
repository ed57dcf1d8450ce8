"""The page filters: times and dates in zh-CN, in the county's zone (Asia/Shanghai in tests)."""

from datetime import UTC, date, datetime

import pytest

from api.templating import local_date, local_time, templates


def test_local_time_shows_a_utc_instant_in_county_time_without_zero_padding() -> None:
    assert local_time(datetime(2026, 9, 10, 6, 5, tzinfo=UTC)) == "2026年9月10日 14:05"
    assert local_time(datetime(2026, 1, 2, 0, 0, tzinfo=UTC)) == "2026年1月2日 08:00"


def test_local_time_crosses_the_date_line_in_county_time() -> None:
    assert local_time(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == "2027年1月1日 00:30"


def test_local_time_takes_an_explicit_format_and_shows_nothing_for_none() -> None:
    assert local_time(datetime(2026, 9, 10, 6, 5, tzinfo=UTC), "%H:%M") == "14:05"
    assert local_time(None) == ""


@pytest.mark.parametrize(("value", "shown"), [
    (date(2026, 9, 10), "2026年9月10日"),
    (date(2012, 1, 1), "2012年1月1日"),
    (datetime(2026, 9, 9, 16, 0, tzinfo=UTC), "2026年9月10日"),  # midnight in Beijing: already the 10th
    ("2014-02-27", "2014年2月27日"),
    ("2023-09", "2023年9月"),
    ("2023-12", "2023年12月"),
    (None, ""),
    ("", ""),
])
def test_local_date_shows_days_and_months_in_chinese(value: object, shown: str) -> None:
    assert local_date(value) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["2023-13", "2023-02-30", "520102201208080011", "张小明", "2023-9", "三年级（1）班",
                                  "２０２３－０９", " 2023-09"])
def test_local_date_leaves_other_text_as_it_is(text: str) -> None:
    assert local_date(text) == text


def test_templates_have_both_filters() -> None:
    page = templates.env.from_string("{{ d | local_date }} · {{ t | local_time }}")
    assert page.render(d="2023-09", t=datetime(2026, 9, 10, 6, 5, tzinfo=UTC)) == "2023年9月 · 2026年9月10日 14:05"
