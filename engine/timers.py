"""Timer event definitions that read the clock of the current unit of work instead of the wall clock.

Spiff's timer definitions call `datetime.now(timezone.utc)` themselves. These subclasses ask the
workflow's `ScriptEngine` (created per call with that call's `now`) instead, so a worker can fire a
timer "as of" the due time it claimed, tests need no sleeping, and nothing global is patched: two
threads advancing two workflows with different clocks do not see each other's time.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from engine.errors import EngineError, ScriptError
from engine.scripting import element_id


def clock_of(task: Any) -> datetime:
    now = getattr(task.workflow.top_workflow.script_engine, "now", None)
    if now is None:
        raise EngineError("引擎运行时未提供时钟 / the engine was run without a clock", element_id=element_id(task))
    return now


def aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime has no UTC offset")
    return value.astimezone(UTC)


def parse_duration(expression: str) -> dict[str, float]:
    """The parts of an ISO-8601 duration such as `P5D` or `PT12H`; raises ValueError when malformed."""
    if not isinstance(expression, str) or not expression.upper().startswith("P"):
        raise ValueError(f"not an ISO-8601 duration: {expression!r}")
    try:
        parts = TimerEventDefinition.parse_iso_duration(expression)
    except Exception:
        raise ValueError(f"not an ISO-8601 duration: {expression!r}") from None
    if not parts:
        raise ValueError(f"not an ISO-8601 duration: {expression!r}")
    return parts


_MONTH_DAY = re.compile(r"^--(\d{2})-(\d{2})$")
_WORKING_DAYS = re.compile(r"^P([1-9][0-9]{0,2})WD$")


@dataclass(frozen=True)
class WorkingDays:
    """`P5WD`: the end of the fifth working day after the task opens (the official calendar, make-up
    working days included, and the county's own days: the caller knows them)."""

    days: int


def parse_due(expression: str) -> tuple[int, int] | dict[str, float] | WorkingDays:
    """A task's `due`: an ISO-8601 duration from when the task opens (`P5D`), working days (`P5WD`, not
    ISO: ISO-8601 has no working days), or a calendar day, ISO-8601's month-day `--09-10`, as the
    regulation's deadlines are (Art. 13: 9月10日). Raises ValueError."""
    if isinstance(expression, str) and (working := _WORKING_DAYS.match(expression)):
        return WorkingDays(int(working[1]))
    match = _MONTH_DAY.match(expression) if isinstance(expression, str) else None
    if match is None:
        return parse_duration(expression)
    month, day = int(match[1]), int(match[2])
    try:
        date(2024, month, day)  # a leap year, so --02-29 is a day
    except ValueError:
        raise ValueError(f"not a month-day: {expression!r}") from None
    return month, day


def due_at(start: datetime, due: str, zone: tzinfo = UTC,
           is_working: Callable[[date], bool] | None = None) -> datetime:
    """When a task opened at `start` is due: `start` plus a duration (calendar months and years counted the
    way Spiff's timers count them); the end of the n-th working day after `start`'s day in `zone`, by
    `is_working`; or the end of the next such calendar day in `zone`, on or after `start`'s own day (a
    task opened on 9月1日 with --09-10 is due at the end of 9月10日 that year)."""
    start = aware_utc(start)
    parsed = parse_due(due)
    if isinstance(parsed, dict):
        return start + TimerEventDefinition.get_timedelta_from_start(parsed, start)
    today = start.astimezone(zone).date()
    if isinstance(parsed, WorkingDays):
        if is_working is None:
            raise ValueError(f"{due!r} counts working days: a working-day calendar is needed")
        day, left = today, parsed.days
        while left:
            day += timedelta(days=1)
            left -= is_working(day)
        return _end_of(day, zone)
    month, day = parsed
    year = today.year if (month, day) >= (today.month, today.day) else today.year + 1
    if (month, day) == (2, 29):
        while not calendar.isleap(year):
            year += 1
    return _end_of(date(year, month, day), zone)


def _end_of(day: date, zone: tzinfo) -> datetime:
    end_of_day = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return end_of_day.astimezone(UTC) - timedelta(seconds=1)


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 datetime string, got {type(value).__name__}")
    # A naive time would be read in the server's local zone; deadlines must not move with the server.
    return aware_utc(datetime.fromisoformat(value))


def _fail(task: Any, exc: Exception) -> ScriptError:
    return ScriptError(f"定时器表达式无效 / invalid timer value: {exc}", element_id=element_id(task))


def _fired_by_clock(my_task: Any, expression: str, target: Callable[[Any], datetime]) -> bool:
    """Evaluate the timer's target time once (kept in the task), then compare it with the instance's clock."""
    event_value = my_task._get_internal_data("event_value")
    if event_value is None:
        value = my_task.workflow.script_engine.evaluate(my_task, expression)
        try:
            event_value = target(value).isoformat()
        except ValueError as exc:
            raise _fail(my_task, exc) from exc
        my_task._set_internal_data(event_value=event_value)
    if datetime.fromisoformat(event_value) <= clock_of(my_task):
        my_task._set_internal_data(event_fired=True)
    return my_task._get_internal_data("event_fired", False)


class ClockedTimeDateEventDefinition(TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        return _fired_by_clock(my_task, self.expression, _parse_datetime)


class ClockedDurationTimerEventDefinition(DurationTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        return _fired_by_clock(my_task, self.expression, lambda value: due_at(clock_of(my_task), value))


class ClockedCycleTimerEventDefinition(CycleTimerEventDefinition):
    def cycle_complete(self, my_task: Any) -> bool:
        now = clock_of(my_task)
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            try:
                cycles, start, duration = _parse_recurring(value, now)
            except ValueError as exc:
                raise _fail(my_task, exc) from exc
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}

        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event <= now:
                event_value["next"] = (next_event + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def _parse_recurring(expression: Any, now: datetime) -> tuple[int, datetime, timedelta]:
    if not isinstance(expression, str) or not expression.upper().startswith("R"):
        raise ValueError(f"not an ISO-8601 repeating interval: {expression!r}")
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) not in (2, 3):
        raise ValueError(f"not an ISO-8601 repeating interval: {expression!r}")
    cycles = int(components[0]) if components[0] else -1
    if len(components) == 2:
        # Only a duration: Spiff starts counting at the wall clock; we start at the unit of work's clock.
        return cycles, due_at(now, components[1]), due_at(now, components[1]) - now
    try:
        return TimerEventDefinition.parse_iso_recurring_interval(expression)
    except Exception as exc:
        raise ValueError(f"not an ISO-8601 repeating interval: {expression!r}") from exc


CLOCKED_TIMERS: dict[type, type] = {
    TimeDateEventDefinition: ClockedTimeDateEventDefinition,
    DurationTimerEventDefinition: ClockedDurationTimerEventDefinition,
    CycleTimerEventDefinition: ClockedCycleTimerEventDefinition,
}


def timer_due(task: Any) -> datetime | None:
    """When a waiting timer task fires next, from what its definition stored; None if not yet computed."""
    event_value = task._get_internal_data("event_value")
    if event_value is None:
        return None
    if isinstance(event_value, dict):
        if event_value.get("cycles", 0) == 0:
            return None
        return aware_utc(datetime.fromisoformat(event_value["next"]))
    return aware_utc(datetime.fromisoformat(event_value))
