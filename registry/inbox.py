"""The task inbox: tabs with counts, filters and sorting, reassignment, batch decisions, saved views, drafts.

Tabs (what a registrar, a principal and a county reviewer each need in September):
- `mine`: open tasks I have claimed;
- `to_claim`: open, unclaimed tasks of a role I hold at or above the task's org unit;
- `done`: tasks I completed;
- `scope`: every open task at my org units, whatever its role: for county roles, who watch the
  schools' steps as well as their own.
Drafts of half-filled task forms are in registry/drafts.py.
"""

from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, ForeignKey, String, delete, false, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.access import OVERSIGHT_ROLES, holds, scope_clause
from registry.audit import record
from registry.db import Base, UTCDateTime, utcnow
from registry.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleViolation,
    join_messages,
    msg,
)
from registry.org_units import OrgKind, OrgUnit
from registry.settings import local_zone
from registry.users import ROLE_LABELS, Role, RoleGrant, User, find_user
from registry.workflows import (
    TASK_LIST_LOADS,
    HumanTask,
    InstanceStatus,
    ProcessInstance,
    ProcessVersion,
    TaskStatus,
    complete_task,
    get_task,
    task_actions,
    task_form,
)


class Tab(StrEnum):
    mine = "mine"
    to_claim = "to_claim"
    done = "done"
    scope = "scope"


TAB_LABELS = {Tab.mine: msg("我的任务"), Tab.to_claim: msg("待认领"), Tab.done: msg("我已办"),
              Tab.scope: msg("辖区全部待办")}
# Who may hand a task to someone else: a principal within the school, a county reviewer within the county.
SUPERVISORS = {OrgKind.school: Role.school_principal, OrgKind.county: Role.county_reviewer}
SORTS = {"due": msg("截止时间"), "created": msg("到达时间"), "process": msg("流程")}
MAX_BATCH = 500


@dataclass(frozen=True)
class InboxQuery:
    """What the inbox shows; kept in the URL (`as_query_string`) so a view can be bookmarked and shared."""

    tab: Tab = Tab.to_claim
    process_id: str | None = None
    school_code: str | None = None
    overdue: bool = False
    due_this_week: bool = False
    sort: str = "due"

    @classmethod
    def from_params(cls, params: dict[str, str]) -> "InboxQuery":
        """Unknown or malformed values fall back to the defaults: a stale bookmark still opens."""
        tab = params.get("tab", "")
        sort = params.get("sort", "")
        return cls(tab=Tab(tab) if tab in Tab.__members__ else Tab.to_claim,
                   process_id=(params.get("process_id") or "").strip()[:80] or None,
                   school_code=(params.get("school_code") or "").strip()[:20] or None,
                   overdue=params.get("overdue") in ("1", "true", "on"),
                   due_this_week=params.get("due_this_week") in ("1", "true", "on"),
                   sort=sort if sort in SORTS else "due")

    def as_query_string(self, **changes: Any) -> str:
        values = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        pairs = {k: ("1" if v is True else str(v)) for k, v in values.items() if v not in (None, False, "")}
        if pairs.get("sort") == "due":
            del pairs["sort"]
        return urlencode(pairs)


def _week_end(now: datetime, zone: ZoneInfo) -> datetime:
    """The end of this week (Sunday midnight) in the county's time, as UTC."""
    today = now.astimezone(zone).date()
    sunday = today + timedelta(days=6 - today.weekday())
    return datetime.combine(sunday + timedelta(days=1), time(), tzinfo=zone)


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Late by its due date, or flagged by the process's own deadline timer."""
    return HumanTask.overdue.is_(True) | (HumanTask.due_at < now)


def _tab_clause(actor: User, tab: Tab) -> ColumnElement[bool]:
    if tab == Tab.mine:
        return (HumanTask.status == TaskStatus.open) & (HumanTask.claimed_by_id == actor.id)
    if tab == Tab.done:
        return (HumanTask.status == TaskStatus.completed) & (HumanTask.completed_by_id == actor.id)
    if tab == Tab.scope:
        return (HumanTask.status == TaskStatus.open) & scope_clause(actor, OrgUnit.path, roles=OVERSIGHT_ROLES)
    own_roles = [scope_clause(actor, OrgUnit.path, roles=[r]) & (HumanTask.role == r)
                 for r in sorted({g.role for g in actor.grants})]
    if not own_roles:
        return false()
    return (HumanTask.status == TaskStatus.open) & HumanTask.claimed_by_id.is_(None) & or_(*own_roles)


def _filtered(actor: User, query: InboxQuery, *, now: datetime, zone: ZoneInfo, held: bool = False) -> Any:
    """The tab's tasks under the query's filters. Open tasks of an instance that is not running (suspended
    by a process administrator, stopped in error) are left out: nobody can complete them now, a batch
    decision including one would fail as a whole, and counts and deadlines would promise work that cannot
    be done. `held=True` gives just those instead, for the line that says how many wait. The done tab
    keeps every task its user completed, whatever became of the instance."""
    statement = (select(HumanTask).join(OrgUnit, HumanTask.org_unit_id == OrgUnit.id)
                 .where(_tab_clause(actor, query.tab)))
    if query.tab != Tab.done:
        running = ProcessInstance.status == InstanceStatus.running
        statement = (statement.join(ProcessInstance, HumanTask.instance_id == ProcessInstance.id)
                     .where(~running if held else running))
    if query.process_id:
        statement = statement.where(HumanTask.process_id == query.process_id)
    if query.school_code:
        statement = statement.where(OrgUnit.code == query.school_code)
    if query.overdue:
        statement = statement.where(overdue_clause(now))
    if query.due_this_week:
        statement = statement.where(HumanTask.due_at.is_not(None), HumanTask.due_at < _week_end(now, zone))
    return statement


def list_inbox(session: Session, *, actor: User, query: InboxQuery, now: datetime | None = None,
               zone: ZoneInfo | None = None, limit: int = 100,
               offset: int = 0) -> tuple[list[HumanTask], int]:
    now = now or utcnow()
    statement = _filtered(actor, query, now=now, zone=zone or local_zone())
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    if query.sort == "created":
        order = (HumanTask.created_at.desc(), HumanTask.id.desc())
    elif query.sort == "process":
        order = (HumanTask.process_id, HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
    elif query.tab == Tab.done:
        order = (HumanTask.completed_at.desc(), HumanTask.id.desc())
    else:
        order = (HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
    rows = session.scalars(statement.options(*TASK_LIST_LOADS).order_by(*order).limit(limit).offset(offset)).unique()
    return list(rows), total


def tab_counts(session: Session, *, actor: User, query: InboxQuery, now: datetime | None = None,
               zone: ZoneInfo | None = None) -> dict[Tab, int]:
    """How many tasks each tab holds under the same filters; `scope` only for those who have it."""
    now, zone = now or utcnow(), zone or local_zone()
    counts = {}
    for tab in tabs_for(actor):
        statement = _filtered(actor, InboxQuery(**{**query.__dict__, "tab": tab}), now=now, zone=zone)
        counts[tab] = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    return counts


def held_count(session: Session, *, actor: User, query: InboxQuery, now: datetime | None = None,
               zone: ZoneInfo | None = None) -> int:
    """Open tasks the tab would show but for their instance being suspended or in error (not the done tab)."""
    if query.tab == Tab.done:
        return 0
    statement = _filtered(actor, query, now=now or utcnow(), zone=zone or local_zone(), held=True)
    return session.scalar(select(func.count()).select_from(statement.subquery())) or 0


def tabs_for(actor: User) -> list[Tab]:
    tabs = [Tab.mine, Tab.to_claim, Tab.done]
    if any(g.role in OVERSIGHT_ROLES for g in actor.grants):
        tabs.append(Tab.scope)
    return tabs


def process_choices(session: Session) -> list[tuple[str, str]]:
    """(process id, name) of every deployed process, for the filter."""
    rows = session.execute(select(ProcessVersion.process_id, func.max(ProcessVersion.name))
                           .group_by(ProcessVersion.process_id).order_by(ProcessVersion.process_id)).all()
    return [(row[0], row[1]) for row in rows]


def next_deadlines(session: Session, *, actor: User, now: datetime | None = None, days: int = 14,
                   zone: ZoneInfo | None = None) -> list[tuple[datetime, int]]:
    """(local date, number of my tasks due that day) for the coming `days`, nearest first: what is due when."""
    now, zone = now or utcnow(), zone or local_zone()
    statement = _filtered(actor, InboxQuery(tab=Tab.to_claim), now=now, zone=zone).with_only_columns(HumanTask.due_at)
    mine = _filtered(actor, InboxQuery(tab=Tab.mine), now=now, zone=zone).with_only_columns(HumanTask.due_at)
    dues = [*session.scalars(statement.where(HumanTask.due_at >= now, HumanTask.due_at < now + timedelta(days=days))),
            *session.scalars(mine.where(HumanTask.due_at >= now, HumanTask.due_at < now + timedelta(days=days)))]
    by_day: dict[Any, int] = {}
    for due in dues:
        day = due.astimezone(zone).date()
        by_day[day] = by_day.get(day, 0) + 1
    return sorted(by_day.items())


def school_choices(session: Session, *, actor: User) -> list[OrgUnit]:
    """The schools the caller may filter by: those under their grants."""
    return list(session.scalars(select(OrgUnit).where(OrgUnit.kind == OrgKind.school, scope_clause(actor, OrgUnit.path))
                                .order_by(OrgUnit.code)))


BATCH_FIELDS = frozenset({"decision", "comment"})


def batch_kind(session: Session, *, actor: User, tasks: list[HumanTask]) -> dict[str, Any] | None:
    """When every listed task is the same review step the caller holds, the decisions they may take on all
    at once: {"title", "actions"}; otherwise None (a step whose form asks more than a decision is done one by one)."""
    kinds = {(t.process_id, t.task_id) for t in tasks}
    if len(kinds) != 1 or not all(t.status == TaskStatus.open and holds(actor, t.role, t.org_unit) for t in tasks):
        return None
    fields_asked = set((task_form(session, tasks[0]) or {}).get("properties") or {})
    if "decision" not in fields_asked or fields_asked - BATCH_FIELDS:
        return None
    return {"title": tasks[0].title, "actions": task_actions(task_form(session, tasks[0]))}


# --- reassigning ---------------------------------------------------------------------------

def may_reassign(actor: User, task: HumanTask) -> bool:
    """A principal within their school, a county reviewer within their county."""
    return any(g.role == role and g.org_unit.kind == kind and g.org_unit.covers(task.org_unit)
               for g in actor.grants for kind, role in SUPERVISORS.items())


def candidates(session: Session, *, task: HumanTask) -> list[User]:
    """Who a task may be handed to: every active user holding its role at or above its org unit."""
    ancestors = [int(part) for part in task.org_unit.path.strip("/").split("/")]
    return list(session.scalars(select(User).join(RoleGrant, RoleGrant.user_id == User.id)
                                .where(RoleGrant.role == task.role, RoleGrant.org_unit_id.in_(ancestors),
                                       User.active.is_(True)).order_by(User.username)).unique())


def reassign(session: Session, *, actor: User, task_id: int, to_username: str, reason: str | None = None) -> HumanTask:
    task = get_task(session, actor=actor, task_id=task_id)
    if not may_reassign(actor, task):
        raise PermissionDenied(msg("只有本校校长或县营养办审核员可以转派任务"))
    if task.status != TaskStatus.open:
        raise InvalidTransition(msg("任务已完成，不能转派"))
    target = find_user(session, username=(to_username or "").strip())
    if target is None or not target.active:
        raise RuleViolation(msg("转派给：找不到用户 {username}", username=to_username),
                            details=[{"field": "to_username", "message": msg("用户不存在")}])
    if not holds(target, task.role, task.org_unit):
        raise RuleViolation(msg("转派给：{name}不是{org_unit}的{role}，不能办理此任务", name=target.display_name,
                                org_unit=task.org_unit.name, role=msg(ROLE_LABELS[Role(task.role)])),
                            details=[{"field": "to_username", "message": msg("没有办理此任务的角色")}])
    before = task.claimed_by_id
    task.claimed_by_id = target.id
    session.flush()
    record(session, actor=actor, action="task.reassign", object_type="human_task", object_id=task.id,
           org_unit_id=task.org_unit_id, instance_id=task.instance_id, before={"claimed_by_id": before},
           after={"claimed_by_id": target.id, "username": target.username}, reason=reason or None)
    return task


# --- batch decisions ---------------------------------------------------------------------------

@dataclass
class ItemResult:
    task_id: int
    title: str
    subject: str | None
    ok: bool
    message: str


def complete_many(session: Session, *, actor: User, task_ids: list[int], data: dict[str, Any],
                  now: datetime | None = None) -> tuple[bool, list[ItemResult]]:
    """One decision (approve, return with a comment, ...) on many tasks of the same kind at once.

    Each task is completed on its own savepoint and its own checks, and the result of each is
    listed. If any fails, every one is rolled back: the reviewer sees which, leaves those out and
    sends the rest again. Nothing is ever half-done. The caller commits when the first value is True.
    """
    now = now or utcnow()
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        raise RuleViolation(msg("请至少选择一项任务"), details=[{"field": "task_ids", "message": msg("未选择任务")}])
    if len(ids) > MAX_BATCH:
        raise RuleViolation(msg("一次最多办理 {max_batch} 项", max_batch=MAX_BATCH),
                            details=[{"field": "task_ids", "message": msg("过多")}])
    tasks = [get_task(session, actor=actor, task_id=task_id) for task_id in ids]
    kinds = {(t.process_id, t.task_id) for t in tasks}
    if len(kinds) > 1:
        raise RuleViolation(msg("批量办理只能选择同一流程、同一环节的任务"),
                            details=[{"field": "task_ids", "message": msg("任务类型不一致")}])
    results: list[ItemResult] = []
    outer = session.begin_nested()
    for task in tasks:
        subject = task.instance.subject_label
        item = session.begin_nested()
        try:
            completed, warnings = complete_task(session, actor=actor, task_id=task.id, data=dict(data), now=now)
            item.commit()
            note = join_messages(w.message for w in warnings)
            results.append(ItemResult(task.id, task.title, subject, True,
                                      msg("已办理：{note}", note=note) if note else msg("已办理")))
        except DomainError as err:
            item.rollback()
            # Parts of a completion are plain statements the session does not track: reload from the database.
            session.expire_all()
            results.append(ItemResult(task.id, task.title, subject, False, err.message))
    succeeded = all(r.ok for r in results)
    if succeeded:
        outer.commit()
        record(session, actor=actor, action="task.batch_complete", object_type="human_task", object_id=None,
               after={"task_ids": ids, "decision": data.get("decision")}, reason=data.get("comment") or None)
    else:
        outer.rollback()
        session.expire_all()
        results = [r if not r.ok else ItemResult(r.task_id, r.title, r.subject, True,
                                                 msg("可以办理（因其他任务出错，本次未提交）"))
                   for r in results]
    return succeeded, results


# --- saved views -----------------------------------------------------------------------------

class SavedView(Base):
    """A named inbox query of one user; its link opens the same filters for anyone (each sees their own tasks)."""

    __tablename__ = "saved_view"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def save_view(session: Session, *, actor: User, name: str, query: InboxQuery) -> SavedView:
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise RuleViolation(msg("视图名称：必填，最多 60 字"),
                            details=[{"field": "name", "message": msg("必填，最多 60 字")}])
    if session.scalar(select(func.count()).select_from(SavedView).where(SavedView.user_id == actor.id)) >= 50:
        raise Conflict(msg("每人最多保存 50 个视图，请先删除不用的视图"))
    view = SavedView(user_id=actor.id, name=name, query=query.as_query_string())
    session.add(view)
    session.flush()
    record(session, actor=actor, action="view.save", object_type="saved_view", object_id=view.id,
           after={"name": name, "query": view.query})
    return view


def views_of(session: Session, *, actor: User) -> list[SavedView]:
    return list(session.scalars(select(SavedView).where(SavedView.user_id == actor.id).order_by(SavedView.name)))


def get_view(session: Session, view_id: int) -> SavedView:
    """Any signed-in user may open a shared view: it holds filters only, and the inbox scopes the rows."""
    view = session.get(SavedView, view_id)
    if view is None:
        raise NotFound(msg("找不到视图 {view_id}", view_id=view_id))
    return view


def view_params(view: SavedView) -> dict[str, str]:
    return dict(parse_qsl(view.query))


def delete_view(session: Session, *, actor: User, view_id: int) -> None:
    view = get_view(session, view_id)
    if view.user_id != actor.id:
        raise PermissionDenied(msg("只能删除自己保存的视图"))
    session.execute(delete(SavedView).where(SavedView.id == view.id))
    record(session, actor=actor, action="view.delete", object_type="saved_view", object_id=view_id,
           before={"name": view.name, "query": view.query})
