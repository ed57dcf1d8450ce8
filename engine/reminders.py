"""Reminder policies of user tasks, and which reminder is due when: pure, no database and no clock.

A policy is declared on the BPMN user task next to its `due`:
`<spiffworkflow:property name="reminders" value="-P3D,-P1D,P0D,overdue-daily,escalate-after-3" />`.
Its parts, comma-separated, in any order:
- `-P<n>D`: on the calendar day n days before the due day; `P0D`: on the due day;
- `overdue-daily`: every working day after the due day while the task stays open;
- `escalate-after-<n>`: once the task is n working days overdue, tell the supervisors one level up;
- `none`: no reminders at all.
A task with a `due` and no `reminders` takes DEFAULT_POLICY.

Reminders go out at REMINDER_HOUR in the county's time, not at the due instant: a 9月10日 deadline
falls due at 23:59:59, and "3 days before" at midnight would reach nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DEFAULT_POLICY_TEXT = "-P3D,-P1D,P0D,overdue-daily,escalate-after-3"
REMINDER_HOUR = 8

_BEFORE = re.compile(r"^-P(\d{1,3})D$")
_ESCALATE = re.compile(r"^escalate-after-(\d{1,2})$")


@dataclass(frozen=True)
class ReminderPolicy:
    before_days: tuple[int, ...] = ()  # largest first; 0 is the due day itself
    overdue_daily: bool = False
    escalate_after: int | None = None  # working days overdue

    @property
    def watches_overdue(self) -> bool:
        return self.overdue_daily or self.escalate_after is not None


def parse_policy(text: str | None) -> ReminderPolicy:
    """The policy a `reminders` property declares (DEFAULT_POLICY when None). Raises ValueError naming the bad part."""
    if text is None:
        return DEFAULT_POLICY
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts == ["none"]:
        return ReminderPolicy()
    if not parts:
        raise ValueError("empty reminder policy")
    before: set[int] = set()
    overdue = False
    escalate: int | None = None
    for part in parts:
        match = _BEFORE.match(part)
        if part.upper() == "P0D":
            before.add(0)
        elif match and int(match[1]) > 0:
            before.add(int(match[1]))
        elif part == "overdue-daily":
            overdue = True
        elif (match := _ESCALATE.match(part)) and int(match[1]) > 0:
            escalate = int(match[1])
        else:
            raise ValueError(f"not a reminder step: {part!r} (use -P3D, P0D, overdue-daily, escalate-after-3 or none)")
    return ReminderPolicy(tuple(sorted(before, reverse=True)), overdue, escalate)


DEFAULT_POLICY = parse_policy(DEFAULT_POLICY_TEXT)


@dataclass(frozen=True)
class Step:
    key: str  # unique per task and due date: moving the due date makes every step new again
    kind: str  # "reminder" before and on the due day, "overdue" after it
    at: datetime  # UTC
    days: int  # days before the due day (reminder), working days overdue (overdue)


@dataclass(frozen=True)
class Plan:
    current: Step | None  # the step to send now, if any (missed earlier ones are not sent late)
    next_at: datetime | None  # when to look again; None: nothing more will ever be due
    overdue_days: int  # working days overdue as of now, counted up to the escalation threshold
    escalate: bool


def _morning(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(REMINDER_HOUR), tzinfo=zone).astimezone(UTC)


def before_steps(policy: ReminderPolicy, *, due_at: datetime, zone: tzinfo) -> list[Step]:
    due_day = due_at.astimezone(zone).date()
    return [Step(key=f"{'due' if k == 0 else f'before-{k}d'}@{due_day.isoformat()}", kind="reminder",
                 at=min(_morning(due_day - timedelta(days=k), zone), due_at), days=k)
            for k in policy.before_days]


def plan(policy: ReminderPolicy, *, due_at: datetime, opened_at: datetime, now: datetime, zone: tzinfo,
         is_working: Callable[[date], bool]) -> Plan:
    """What to send for a task at `now`, and when to look next.

    Steps that fell due before the task opened are never sent (a task opened on its due day gets no
    "3 days before"); of the steps that fell due since, only the latest goes out, so a worker that
    was down for two days sends one reminder, not a burst. `is_working` is asked about today and
    the days since the due day only, never about the future: a year the calendar lacks fails when
    it is reached, not months ahead.
    """
    today = now.astimezone(zone).date()
    due_day = due_at.astimezone(zone).date()
    steps = before_steps(policy, due_at=due_at, zone=zone)
    current = None
    for step in steps:
        # Ascending in time: the last that matches is the latest. After the due day they are stale.
        if opened_at < step.at <= now and today <= due_day:
            current = step
    overdue_days = 0
    escalate = False
    if policy.watches_overdue and today > due_day and now >= due_at:
        # Days after the due day whose morning has come: today only once it is past REMINDER_HOUR.
        last = today if now >= _morning(today, zone) else today - timedelta(days=1)
        day = due_day + timedelta(days=1)
        limit = policy.escalate_after or 0
        while day <= last:
            if is_working(day):
                overdue_days += 1
            if not policy.overdue_daily and overdue_days >= limit:
                break
            day += timedelta(days=1)
        if policy.overdue_daily and last == today and _morning(today, zone) > opened_at and is_working(today):
            current = Step(key=f"overdue@{today.isoformat()}", kind="overdue", at=_morning(today, zone),
                           days=overdue_days)
        escalate = policy.escalate_after is not None and overdue_days >= policy.escalate_after
    later = [s.at for s in steps if s.at > now]
    if later:
        next_at: datetime | None = min(later)
    elif policy.watches_overdue:
        morning = today if now < _morning(today, zone) else today + timedelta(days=1)
        next_at = _morning(max(morning, due_day + timedelta(days=1)), zone)
    else:
        next_at = None
    return Plan(current=current, next_at=next_at, overdue_days=overdue_days, escalate=escalate)
