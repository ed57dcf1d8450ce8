"""Deadline reminders and escalation, and moving a task's due date.

`scan` (the Celery beat task `reminders.scan`) claims the task_reminder rows whose time has come,
works out each task's step from its process's reminder policy (engine/reminders.py) and the
county's working-day calendar, makes the notifications (registry/notifications.py: their dedup
keys make a second look at the same step a no-op) and moves the row on. Reminders go to whoever
can act: the claimer, or else every holder of the task's role at or above its org unit. Overdue
past the policy's threshold, the supervisors one level up hear of it (school → township officer,
township → county reviewer) and the task is flagged on the county's home page.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from engine.reminders import DEFAULT_POLICY, ReminderPolicy, parse_policy, plan
from registry import notifications, workflows
from registry.access import OVERSIGHT_ROLES, scope_clause, sees
from registry.audit import record
from registry.db import is_postgres, unit_of_work, utcnow
from registry.errors import InvalidTransition, NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.notifications import Kind
from registry.org_units import OrgKind, OrgUnit
from registry.settings import local_zone
from registry.task_reminders import TaskReminder
from registry.users import ROLE_LABELS, ROLE_SCOPE, Role, RoleGrant, User
from registry.workflows import HumanTask, ProcessInstance, ProcessVersion, TaskStatus
from registry.working_days import CalendarNotCovered, WorkCalendar, calendar_of

log = logging.getLogger(__name__)

# Escalation goes one level above the level of the task's role: a school step to the township, a township
# step to the county reviewer, and a county step to the bureau itself (county_admin), besides the flag on
# the county's dashboard.
SUPERVISOR_ABOVE = {OrgKind.school: Role.township_officer, OrgKind.township: Role.county_reviewer,
                    OrgKind.county: Role.county_admin}
# Who may move a due date: someone over the task's unit whose role ranks above the task's role.
DUE_SETTERS = frozenset({Role.school_principal, Role.township_officer, Role.county_reviewer, Role.county_admin})
RANK = {Role.school_registrar: 0, Role.school_principal: 1, Role.township_officer: 2, Role.county_reviewer: 3,
        Role.county_aid_center: 3, Role.auditor: 3, Role.process_admin: 3, Role.county_admin: 4}
# A task whose calendar year is missing is looked at again this much later (the error stays visible meanwhile).
CALENDAR_RETRY = timedelta(hours=6)
# The county's dashboard shows escalated tasks to these (and township officers see their schools').
DASHBOARD_ROLES = OVERSIGHT_ROLES | {Role.township_officer}


def local_due(value: datetime) -> str:
    d = value.astimezone(local_zone())
    return f"{d.year}年{d.month}月{d.day}日 {d:%H:%M}"


@dataclass
class _Scan:
    """What one scan looks up once: policies, role holders, calendars, preferences."""

    session: Session
    now: datetime
    policies: dict[tuple[int, str], ReminderPolicy] = field(default_factory=dict)
    holders: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    calendars: dict[int, WorkCalendar] = field(default_factory=dict)
    units: dict[int, OrgUnit] = field(default_factory=dict)

    def policy(self, version_id: int, task_id: str) -> ReminderPolicy:
        key = (version_id, task_id)
        if key not in self.policies:
            version = self.session.get(ProcessVersion, version_id)
            info = workflows.definition_of(version).user_tasks.get(task_id) if version else None
            self.policies[key] = parse_policy(info.reminders) if info and info.reminders else DEFAULT_POLICY
        return self.policies[key]

    def unit(self, unit_id: int) -> OrgUnit:
        if unit_id not in self.units:
            found = self.session.get(OrgUnit, unit_id)
            assert found is not None
            self.units[unit_id] = found
        return self.units[unit_id]

    def role_holders(self, role: str, unit: OrgUnit) -> list[int]:
        key = (role, unit.id)
        if key not in self.holders:
            self.holders[key] = holders_of(self.session, role=role, unit=unit)
        return self.holders[key]

    def calendar(self, unit: OrgUnit) -> WorkCalendar:
        county_id = int(unit.path.strip("/").split("/")[0])
        if county_id not in self.calendars:
            self.calendars[county_id] = calendar_of(self.session, self.unit(county_id))
        return self.calendars[county_id]


def holders_of(session: Session, *, role: str, unit: OrgUnit) -> list[int]:
    """Active users holding `role` at `unit` or above it."""
    ancestors = [int(part) for part in unit.path.strip("/").split("/")]
    return list(session.scalars(select(User.id).join(RoleGrant, RoleGrant.user_id == User.id)
                                .where(RoleGrant.role == role, RoleGrant.org_unit_id.in_(ancestors),
                                       User.active.is_(True)).distinct().order_by(User.id)))


def supervisor_of(role: str, unit: OrgUnit) -> tuple[Role, int] | None:
    """The role one level above the task's role, and the unit (by id) where it sits: a school step goes to
    the township officer of the school's township, a township step to the county reviewer, a county step
    (other than county_admin's own) to county_admin."""
    scope = ROLE_SCOPE.get(Role(role)) if role in Role.__members__ else None
    supervisor = SUPERVISOR_ABOVE.get(scope) if scope else None
    levels = [int(part) for part in unit.path.strip("/").split("/")]
    depth = {OrgKind.school: 1, OrgKind.township: 0, OrgKind.county: 0}.get(scope) if scope else None
    if supervisor is None or supervisor == role or depth is None or len(levels) <= depth:
        return None
    return supervisor, levels[depth]


def acting_users(session: Session, task: HumanTask) -> list[int]:
    return [task.claimed_by_id] if task.claimed_by_id else holders_of(session, role=task.role, unit=task.org_unit)


def claim_due(session: Session, *, now: datetime, limit: int) -> list[TaskReminder]:
    """Rows whose time has come, locked for this transaction; another scanner skips them (PostgreSQL)."""
    query = select(TaskReminder).where(TaskReminder.next_at <= now).order_by(TaskReminder.next_at).limit(limit)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def _context(task: HumanTask, subject_label: str | None) -> dict[str, Any]:
    return {"title": task.title, "subject_label": subject_label or "", "org_unit": task.org_unit.name,
            "role": ROLE_LABELS.get(Role(task.role), task.role) if task.role in Role.__members__ else task.role,
            "due": local_due(task.due_at) if task.due_at else "", "claimed": task.claimed_by_id is not None}


def _look(scan: _Scan, reminder: TaskReminder, task: HumanTask | None, version_id: int, subject_label: str | None,
          out: list[tuple[notifications.Message, list[int]]]) -> None:
    """One task's look: the step due now (if any) into `out`, escalation, and when to look next."""
    session, now = scan.session, scan.now
    if task is None or task.status != TaskStatus.open or task.due_at is None:
        session.delete(reminder)
        return
    if reminder.due_at != task.due_at:  # moved by other means than change_due_date: start afresh
        reminder.due_at, reminder.escalated_at = task.due_at, None
    unit = scan.unit(task.org_unit_id)
    policy = scan.policy(version_id, task.task_id)
    try:
        step_plan = plan(policy, due_at=task.due_at, opened_at=task.created_at, now=now, zone=local_zone(),
                         is_working=scan.calendar(unit).is_working)
    except CalendarNotCovered as err:
        log.error("reminders of task %s: %s", task.id, err.message)
        reminder.error, reminder.next_at = err.message, now + CALENDAR_RETRY
        return
    reminder.error = None
    context = _context(task, subject_label)
    step = step_plan.current
    if step is not None:
        kind = Kind.reminder if step.kind == "reminder" else Kind.overdue
        message = notifications.render(kind, key=f"task:{task.id}:{step.key}", link=f"/tasks/{task.id}",
                                       task_id=task.id, instance_id=task.instance_id, org_unit_id=unit.id,
                                       days=step.days, **context)
        recipients = [task.claimed_by_id] if task.claimed_by_id else scan.role_holders(task.role, unit)
        out.append((message, recipients))
        reminder.last_step = step.key
    if step_plan.escalate and reminder.escalated_at is None:
        _escalate(scan, reminder, task, unit, step_plan.overdue_days, context, out)
    reminder.next_at = step_plan.next_at
    if reminder.next_at is None and reminder.escalated_at is None:
        session.delete(reminder)  # nothing more will fall due, and nothing to show on the dashboard


def _escalate(scan: _Scan, reminder: TaskReminder, task: HumanTask, unit: OrgUnit, days: int,
              context: dict[str, Any], out: list[tuple[notifications.Message, list[int]]]) -> None:
    reminder.escalated_at = scan.now
    above = supervisor_of(task.role, unit)
    recipients: list[int] = []
    if above is not None:
        supervisor, supervising_unit = above
        recipients = scan.role_holders(supervisor, scan.unit(supervising_unit))
        claimer = task.claimed_by.display_name if task.claimed_by else ""
        due_day = task.due_at.astimezone(local_zone()).date() if task.due_at else None
        message = notifications.render(
            Kind.escalation, key=f"task:{task.id}:escalate@{due_day}", link=f"/tasks/{task.id}", task_id=task.id,
            instance_id=task.instance_id, org_unit_id=unit.id, days=days, supervisor_role=ROLE_LABELS[supervisor],
            claimer=claimer, **{k: v for k, v in context.items() if k != "claimed"})
        out.append((message, recipients))
    record(scan.session, actor=None, action="task.escalate", object_type="human_task", object_id=task.id,
           org_unit_id=unit.id, instance_id=task.instance_id,
           after={"overdue_working_days": days, "notified": recipients})


_DUE_ROWS = (select(HumanTask, ProcessInstance.process_version_id, ProcessInstance.subject_label,
                    ProcessInstance.status)
             .join(ProcessInstance, HumanTask.instance_id == ProcessInstance.id)
             .options(joinedload(HumanTask.claimed_by)))


def _look_at(session: Session, reminders: list[TaskReminder], now: datetime) -> list[int]:
    scan = _Scan(session=session, now=now)
    rows: dict[int, Row[Any]] = {row[0].id: row for row in session.execute(
        _DUE_ROWS.where(HumanTask.id.in_([r.task_id for r in reminders])))}
    out: list[tuple[notifications.Message, list[int]]] = []
    for reminder in reminders:
        row = rows.get(reminder.task_id)
        if row is not None and row[3] in workflows.HELD and row[0].status == TaskStatus.open:
            # Held by a process administrator or stopped in error: nothing is sent and nothing escalated
            # until it runs again (process_admin.resume / retry look at the row again then).
            reminder.next_at = None
            continue
        _look(scan, reminder, row[0] if row else None, row[1] if row else 0, row[2] if row else None, out)
    session.flush()
    preferences = notifications.preferences_for(session, {uid for _, users in out for uid in users})
    made = [r for message, users in out for r in notifications.rows_for(message, users, preferences, now)]
    return notifications.insert_rows(session, made)


def scan(factory: sessionmaker[Session], *, now: datetime | None = None, limit: int = 20_000, batch: int = 500,
         sent: Callable[[list[int]], None] | None = None) -> list[int]:
    """Look at every task whose reminder time has come; returns the ids of the messages to send.
    `sent` gets each batch's ids as soon as the batch is committed, so sending can start meanwhile."""
    now = now or utcnow()
    ids: list[int] = []
    looked = 0
    while looked < limit:
        made = len(ids)
        try:
            with unit_of_work(factory) as session:
                due = claim_due(session, now=now, limit=batch)
                if not due:
                    break
                ids += _look_at(session, due, now)
            looked += len(due)
        except Exception:
            log.exception("reminder batch failed; looking at its tasks one by one")
            looked += _one_by_one(factory, now=now, limit=batch, ids=ids)
        if sent is not None and len(ids) > made:
            sent(ids[made:])
    with unit_of_work(factory) as session:
        digests = notifications.compose_digests(session, now=now)
    if sent is not None and digests:
        sent(digests)
    return ids + digests


def _one_by_one(factory: sessionmaker[Session], *, now: datetime, limit: int, ids: list[int]) -> int:
    """The slow path after a batch failed: each task alone, so one bad task cannot hold up the rest."""
    with unit_of_work(factory) as session:
        task_ids = [r.task_id for r in claim_due(session, now=now, limit=limit)]
    for task_id in task_ids:
        try:
            with unit_of_work(factory) as session:
                reminder = session.get(TaskReminder, task_id, with_for_update=is_postgres(session))
                if reminder is not None and reminder.next_at is not None and reminder.next_at <= now:
                    ids += _look_at(session, [reminder], now)
        except Exception as err:
            log.exception("reminders of task %s failed", task_id)
            with unit_of_work(factory) as session:
                reminder = session.get(TaskReminder, task_id)
                if reminder is not None:
                    reminder.error = f"{type(err).__name__}: {err}"[:2000]
                    reminder.next_at = now + CALENDAR_RETRY
    return max(len(task_ids), 1)


# --- moving a due date ---------------------------------------------------------------------------

def may_change_due(actor: User, task: HumanTask) -> bool:
    if task.status != TaskStatus.open or task.role not in Role.__members__:
        return False
    rank = RANK[Role(task.role)]
    return any(g.role in DUE_SETTERS and RANK[Role(g.role)] > rank and g.org_unit.covers(task.org_unit)
               for g in actor.grants)


def change_due_date(session: Session, *, actor: User, task_id: int, due_on: date, reason: str | None,
                    now: datetime | None = None) -> HumanTask:
    """A supervisor moves an open task's deadline to the end of `due_on` (county time), with a reason;
    its reminders start again from the new date, and whoever can act is told."""
    now = now or utcnow()
    task = session.get(HumanTask, task_id)
    if task is None or not sees(actor, task.org_unit):
        raise NotFound(msg("找不到任务 {task_id}", task_id=task_id))
    # The instance's lock: a completion running at the same time either finishes first or waits.
    session.get(ProcessInstance, task.instance_id, with_for_update={"of": ProcessInstance})
    session.refresh(task)
    if task.status != TaskStatus.open:
        raise InvalidTransition(msg("任务已完成或已取消，不能调整截止时间"))
    if not may_change_due(actor, task):
        raise PermissionDenied(msg("只有上级（校长、乡镇中心校、县营养办审核员或县教育局系统管理员）可以调整此任务的截止时间"))
    text = (reason or "").strip()
    problems = []
    if not text or len(text) > 200:
        problems.append({"field": "reason", "message": msg("调整原因：必填，不超过 200 字")})
    zone = local_zone()
    today = now.astimezone(zone).date()
    if not today <= due_on <= today + timedelta(days=366):
        problems.append({"field": "due_date", "message": msg("新的截止日期：应在今天到一年之内")})
    if problems:
        raise RuleViolation(join_messages(p["message"] for p in problems), details=problems)
    old_due = task.due_at
    new_due = datetime.combine(due_on + timedelta(days=1), time(), tzinfo=zone) - timedelta(seconds=1)
    task.due_at = new_due
    reminder = session.get(TaskReminder, task.id)
    if reminder is None:
        reminder = TaskReminder(task_id=task.id, due_at=new_due)
        session.add(reminder)
    reminder.due_at, reminder.next_at, reminder.last_step, reminder.error = new_due, now, None, None
    reminder.escalated_at = None
    session.flush()
    record(session, actor=actor, action="task.due_change", object_type="human_task", object_id=task.id,
           org_unit_id=task.org_unit_id, instance_id=task.instance_id, reason=text,
           before={"due_at": old_due.isoformat() if old_due else None}, after={"due_at": new_due.isoformat()})
    context = {k: v for k, v in _context(task, task.instance.subject_label).items() if k != "claimed"}
    message = notifications.render(
        Kind.due_changed, key=f"task:{task.id}:due-changed@{now:%Y%m%dT%H%M%S%f}", link=f"/tasks/{task.id}",
        task_id=task.id, instance_id=task.instance_id, org_unit_id=task.org_unit_id, changed_by=actor.display_name,
        old_due=local_due(old_due) if old_due else "无", reason=text, **context)
    notifications.send(session, message=message, recipients=acting_users(session, task), now=now)
    return task


# --- the county's dashboard ------------------------------------------------------------------------

def escalated_tasks(session: Session, *, actor: User, limit: int = 50) -> list[tuple[HumanTask, TaskReminder]]:
    """Open tasks reported one level up for being overdue, in the caller's scope, most overdue first."""
    if not any(g.role in DASHBOARD_ROLES for g in actor.grants):
        return []
    rows = session.execute(select(HumanTask, TaskReminder).join(TaskReminder, TaskReminder.task_id == HumanTask.id)
                           .join(OrgUnit, OrgUnit.id == HumanTask.org_unit_id)
                           .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
                           .where(TaskReminder.escalated_at.is_not(None), HumanTask.status == TaskStatus.open,
                                  ProcessInstance.status.not_in(workflows.HELD),
                                  scope_clause(actor, OrgUnit.path, roles=DASHBOARD_ROLES))
                           .options(joinedload(HumanTask.org_unit), joinedload(HumanTask.instance))
                           .order_by(HumanTask.due_at, HumanTask.id).limit(limit)).unique().all()
    return [(task, reminder) for task, reminder in rows]


def reminder_errors(session: Session, *, actor: User, limit: int = 50) -> list[tuple[HumanTask, TaskReminder]]:
    """Open tasks whose reminders could not be worked out (a year the calendar lacks): county_admin's to fix.
    A task closed since (completed, or left behind by a migration) needs no reminder, whatever its row says."""
    if not notifications.may_read_outbox(actor):
        return []
    rows = session.execute(select(HumanTask, TaskReminder).join(TaskReminder, TaskReminder.task_id == HumanTask.id)
                           .join(OrgUnit, OrgUnit.id == HumanTask.org_unit_id)
                           .where(TaskReminder.error.is_not(None), HumanTask.status == TaskStatus.open,
                                  scope_clause(actor, OrgUnit.path, roles=[Role.county_admin]))
                           .options(joinedload(HumanTask.org_unit)).order_by(HumanTask.id).limit(limit)).unique().all()
    return [(task, reminder) for task, reminder in rows]

