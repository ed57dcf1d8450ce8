"""Reminder policies and which step is due when: pure, every path without a database."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.definitions import load_definition, validate
from engine.errors import DefinitionError
from engine.reminders import DEFAULT_POLICY, ReminderPolicy, parse_policy, plan
from tests.engine.samples import REVIEW_FORM, ROLES
from tests.engine.test_due_and_org_unit import one_task

ZONE = ZoneInfo("Asia/Shanghai")
# 9月10日 (a Thursday in 2026) at the very end of the day, Beijing time.
DUE = datetime(2026, 9, 10, 23, 59, 59, tzinfo=ZONE)
OPENED = datetime(2026, 9, 1, 10, tzinfo=ZONE)


def at(day: int, hour: int = 9, month: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=ZONE)


def weekdays(day: date) -> bool:
    return day.weekday() < 5


def step_at(now: datetime, policy: ReminderPolicy = DEFAULT_POLICY, opened: datetime = OPENED,
            is_working=weekdays):  # type: ignore[no-untyped-def]
    return plan(policy, due_at=DUE, opened_at=opened, now=now, zone=ZONE, is_working=is_working)


def test_the_default_policy_is_three_days_one_day_the_day_then_every_working_day() -> None:
    assert DEFAULT_POLICY == ReminderPolicy(before_days=(3, 1, 0), overdue_daily=True, escalate_after=3)


@pytest.mark.parametrize(("text", "expected"), [
    ("-P3D,-P1D,P0D,overdue-daily", ReminderPolicy((3, 1, 0), True, None)),
    (" P0D , -P7D ", ReminderPolicy((7, 0), False, None)),
    ("escalate-after-2", ReminderPolicy((), False, 2)),
    ("none", ReminderPolicy()),
    (None, DEFAULT_POLICY),
])
def test_policies_parse(text: str | None, expected: ReminderPolicy) -> None:
    assert parse_policy(text) == expected


@pytest.mark.parametrize("text", ["", "P3D", "-P0D", "-PT12H", "weekly", "escalate-after-0", "-P1D,nonsense"])
def test_a_malformed_policy_names_the_bad_part(text: str) -> None:
    with pytest.raises(ValueError):
        parse_policy(text)


@pytest.mark.parametrize(("now", "key", "kind"), [
    (at(7, 7), None, None),  # before 8:00 on 9-7: nothing yet
    (at(7, 8), "before-3d@2026-09-10", "reminder"),
    (at(8), "before-3d@2026-09-10", "reminder"),  # still the latest due step (its dedup key sends it once)
    (at(9), "before-1d@2026-09-10", "reminder"),
    (at(10, 20), "due@2026-09-10", "reminder"),
    (at(11, 7), None, None),  # overdue, but the day's reminder goes at 8:00
    (at(11, 9), "overdue@2026-09-11", "overdue"),
    (at(12, 9), None, None),  # Saturday
    (at(14, 9), "overdue@2026-09-14", "overdue"),
])
def test_each_step_falls_due_at_eight_in_the_morning(now: datetime, key: str | None, kind: str | None) -> None:
    current = step_at(now).current
    assert (current.key if current else None) == key
    assert (current.kind if current else None) == kind


def test_next_look_is_the_next_step_then_each_morning_while_overdue() -> None:
    assert step_at(at(2)).next_at == at(7, 8)
    assert step_at(at(7, 8)).next_at == at(9, 8)
    assert step_at(at(10, 8)).next_at == at(11, 8)
    assert step_at(at(11, 8)).next_at == at(12, 8)
    assert step_at(at(12, 8)).next_at == at(13, 8)  # the calendar is asked when the day comes, not ahead


def test_steps_before_the_task_opened_are_not_sent() -> None:
    result = step_at(at(10, 9), opened=at(10, 8, ))
    assert result.current is None  # opened at 8:00 on the due day: the 8:00 reminder was before it existed
    late = step_at(at(9, 12), opened=at(9, 10))
    assert late.current is None and late.next_at == at(10, 8)


def test_a_worker_down_for_days_sends_only_the_latest_step() -> None:
    current = step_at(at(10, 9)).current
    assert current is not None and current.key == "due@2026-09-10"


def test_escalation_after_three_working_days_overdue_counting_the_calendar() -> None:
    # Overdue days: Fri 11, (Sat, Sun), Mon 14, Tue 15.
    assert not step_at(at(14, 9)).escalate
    assert step_at(at(14, 9)).overdue_days == 2
    result = step_at(at(15, 9))
    assert result.escalate and result.overdue_days == 3
    holiday = {date(2026, 9, 14)}
    shifted = step_at(at(15, 9), is_working=lambda d: weekdays(d) and d not in holiday)
    assert not shifted.escalate and shifted.overdue_days == 2
    assert shifted.current is not None and shifted.current.days == 2


def test_a_policy_without_overdue_steps_ends_after_the_due_day() -> None:
    policy = parse_policy("-P1D,P0D")
    assert step_at(at(10, 9), policy).next_at is None
    assert step_at(at(11, 9), policy).current is None


def test_escalation_only_policy_wakes_daily_but_sends_no_overdue_reminder() -> None:
    policy = parse_policy("escalate-after-1")
    result = step_at(at(11, 9), policy)
    assert result.current is None and result.escalate and result.next_at == at(12, 8)


def test_a_non_working_day_sends_no_overdue_reminder_and_asks_only_about_days_come() -> None:
    asked: list[date] = []

    def calendar(day: date) -> bool:
        asked.append(day)
        return weekdays(day)

    assert step_at(at(13, 9), is_working=calendar).current is None  # Sunday
    assert max(asked) == date(2026, 9, 13)


def test_a_due_time_before_eight_sends_the_days_reminder_at_the_due_time() -> None:
    due = datetime(2026, 9, 10, 7, tzinfo=ZONE)
    result = plan(DEFAULT_POLICY, due_at=due, opened_at=OPENED, now=due, zone=ZONE, is_working=weekdays)
    assert result.current is not None and result.current.key == "due@2026-09-10"
    assert result.current.at == due.astimezone(UTC)


def test_a_bpmn_task_declares_its_policy_and_a_bad_one_is_refused() -> None:
    good = one_task('<spiffworkflow:property name="due" value="P5D"/>'
                    '<spiffworkflow:property name="reminders" value="-P1D,overdue-daily"/>')
    assert load_definition(good, {"review": REVIEW_FORM}).user_tasks["act"].reminders == "-P1D,overdue-daily"
    bad = one_task('<spiffworkflow:property name="reminders" value="weekly"/>')
    with pytest.raises(DefinitionError) as err:
        load_definition(bad, {"review": REVIEW_FORM})
    assert "提醒规则" in err.value.errors[0]["message"] and err.value.errors[0]["element_id"] == "act"
    assert not validate(bad, roles=ROLES, forms={"review": REVIEW_FORM})["valid"]


def test_plan_works_in_utc_too() -> None:
    now = at(9, 8).astimezone(UTC) + timedelta(seconds=1)
    current = step_at(now).current
    assert current is not None and current.key == "before-1d@2026-09-10"
