"""A task's deadline as a calendar day (--09-10) or a duration, and the org unit a task names from its data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.definitions import load_definition, validate
from engine.errors import DefinitionError, EngineError
from engine.runtime import ready_tasks, start
from engine.timers import due_at, parse_due
from tests.engine.samples import REVIEW_FORM, ROLES, T0, flow, probe_bpmn

SHANGHAI = ZoneInfo("Asia/Shanghai")


def one_task(props: str) -> bytes:
    return probe_bpmn(
        '<bpmn:startEvent id="start"/>'
        f'<bpmn:userTask id="act" name="办理"><bpmn:extensionElements><spiffworkflow:properties>'
        f'<spiffworkflow:property name="form" value="review"/>{props}</spiffworkflow:properties>'
        f"</bpmn:extensionElements></bpmn:userTask>"
        '<bpmn:endEvent id="end"/>' + flow("f1", "start", "act") + flow("f2", "act", "end"),
        lanes={"school_registrar": ["start", "act", "end"]},
    )


@pytest.mark.parametrize(("opened", "due", "expected"), [
    # Opened on 1 September (Beijing time): due at the very end of 10 September, Beijing time.
    (datetime(2026, 9, 1, 1, tzinfo=UTC), "--09-10", datetime(2026, 9, 10, 15, 59, 59, tzinfo=UTC)),
    # Opened on the day itself: still that day.
    (datetime(2026, 9, 10, 3, tzinfo=UTC), "--09-10", datetime(2026, 9, 10, 15, 59, 59, tzinfo=UTC)),
    # Opened after it (UTC 9-10 17:00 is 9-11 in Beijing): next year's.
    (datetime(2026, 9, 10, 17, tzinfo=UTC), "--09-10", datetime(2027, 9, 10, 15, 59, 59, tzinfo=UTC)),
    (datetime(2026, 3, 1, tzinfo=UTC), "--02-29", datetime(2028, 2, 29, 15, 59, 59, tzinfo=UTC)),
    (datetime(2026, 9, 1, 1, tzinfo=UTC), "P5D", datetime(2026, 9, 6, 1, tzinfo=UTC)),
])
def test_due_dates(opened: datetime, due: str, expected: datetime) -> None:
    assert due_at(opened, due, SHANGHAI) == expected


@pytest.mark.parametrize("bad", ["--13-01", "--02-30", "09-10", "--9-10", "tomorrow", ""])
def test_bad_due_values_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_due(bad)
    result = validate(one_task(f'<spiffworkflow:property name="due" value="{bad}"/>'), roles=ROLES,
                      forms={"review": REVIEW_FORM})
    assert not result["valid"] and any("月日" in e["message"] for e in result["errors"])


def test_a_task_names_its_org_unit_from_the_data() -> None:
    definition = load_definition(one_task('<spiffworkflow:property name="org_unit" value="receiving_school"/>'),
                                 {"review": REVIEW_FORM})
    workflow = start(definition, {"receiving_school": "2152019902"}, services={}, now=T0)
    [task] = ready_tasks(workflow)
    assert task.org_unit == "2152019902"


def test_without_the_property_the_task_has_no_org_unit_of_its_own() -> None:
    definition = load_definition(one_task(""), {"review": REVIEW_FORM})
    [task] = ready_tasks(start(definition, {}, services={}, now=T0))
    assert task.org_unit is None


@pytest.mark.parametrize(("data", "message"), [({}, "求值失败"), ({"receiving_school": 42}, "机构代码")])
def test_an_org_unit_expression_that_gives_no_code_is_an_engine_error(data: dict, message: str) -> None:
    definition = load_definition(one_task('<spiffworkflow:property name="org_unit" value="receiving_school"/>'),
                                 {"review": REVIEW_FORM})
    with pytest.raises(EngineError) as caught:
        ready_tasks(start(definition, data, services={}, now=T0))
    assert message in str(caught.value) and caught.value.element_id == "act"


def test_an_org_unit_expression_that_does_not_compile_is_refused() -> None:
    with pytest.raises(DefinitionError):
        load_definition(one_task('<spiffworkflow:property name="org_unit" value="__import__(&quot;os&quot;)"/>'),
                        {"review": REVIEW_FORM})


def test_a_due_in_working_days_skips_what_the_calendar_says_is_not_work() -> None:
    from engine.timers import WorkingDays

    assert parse_due("P5WD") == WorkingDays(5)
    for bad in ("P0WD", "PWD", "P5W D", "5WD", "P1000WD"):
        with pytest.raises(ValueError):
            parse_due(bad)
    china = timezone(timedelta(hours=8))
    holidays = {date(2025, 10, d) for d in range(1, 9)}
    make_up = {date(2025, 9, 28), date(2025, 10, 11)}

    def is_working(day: date) -> bool:
        return day in make_up or (day.weekday() < 5 and day not in holidays)

    opened = datetime(2025, 9, 30, 9, 0, tzinfo=china)
    # 10-1 … 10-8 off; 10-9 (Thu), 10-10 (Fri), 10-11 (a make-up Saturday): due at the end of 10-11.
    assert due_at(opened, "P3WD", china, is_working) == datetime(2025, 10, 11, 23, 59, 59, tzinfo=china)
    with pytest.raises(ValueError, match="working-day calendar"):
        due_at(opened, "P3WD", china)
