"""Notifications: one row per message, recipient and channel, and what became of it.

Channels: in-app (the bell in the page header), e-mail over SMTP, and a generic JSON webhook (a
WeCom or DingTalk group bot) whose URL each user sets on their preferences page. A user chooses
their channels, and may take e-mail and webhook messages as one daily digest instead.

Exactly once: every row has a dedup key (task, reminder step, recipient, channel), unique in the
table, so creating the same reminder twice creates nothing the second time. Sending
(registry/delivery.py) claims a row, hands the message to the SMTP server or webhook, and records
the send only after it was accepted, in a transaction of its own per message: a worker that dies
between the two leaves that one row `sending`, and it goes out again when its lease runs out —
that one message, never a stream. The lease is renewed right before each send (`renew_claim`), and a
row another worker claimed after it ran out is skipped, so a slow server never doubles a batch.
Failures are retried with backoff, then the row is `failed`, which county_admin sees at
/notifications/outbox (and counted on their home page).
"""

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import ForeignKey, Index, String, Text, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.access import scope_clause
from registry.audit import record
from registry.db import Base, UTCDateTime, is_postgres, reserve_ids, utcnow
from registry.errors import NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgUnit
from registry.settings import get_settings, local_zone
from registry.users import Role, User


class Channel(StrEnum):
    in_app = "in_app"
    email = "email"
    webhook = "webhook"


class Status(StrEnum):
    pending = "pending"  # waiting to be sent (next_attempt_at: not before)
    sending = "sending"  # claimed by a worker (next_attempt_at: its lease runs out)
    sent = "sent"  # accepted by the SMTP server or webhook; in-app rows are sent when made
    failed = "failed"  # given up after the last retry: county_admin sees it
    held = "held"  # waiting for the recipient's daily digest
    digested = "digested"  # went out inside a digest (digest_id)


class Kind(StrEnum):
    reminder = "reminder"
    overdue = "overdue"
    escalation = "escalation"
    due_changed = "due_changed"
    process_end = "process_end"
    digest = "digest"
    process_error = "process_error"


# Shown on pages only (translated there); what is stored and sent is written in notification_templates.
CHANNEL_LABELS = {Channel.in_app: msg("站内消息"), Channel.email: msg("电子邮件"),
                  Channel.webhook: msg("群机器人（Webhook）")}
STATUS_LABELS = {Status.pending: msg("待发送"), Status.sending: msg("发送中"), Status.sent: msg("已发送"),
                 Status.failed: msg("发送失败"), Status.held: msg("待汇总"), Status.digested: msg("已汇总发送")}
KIND_LABELS = {Kind.reminder: msg("待办提醒"), Kind.overdue: msg("逾期提醒"), Kind.escalation: msg("逾期上报"),
               Kind.due_changed: msg("截止时间变更"), Kind.process_end: msg("办理结果"), Kind.digest: msg("每日汇总"),
               Kind.process_error: msg("流程出错")}
# The digest goes out once a day at this local time, with everything held until then.
DIGEST_TIME = time(8, 30)
PAGE_SIZE = 50


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_bell", "recipient_id", "channel", "read_at"),
        Index("ix_notification_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(20))
    # A message stays what was sent, whatever becomes of what it was about.
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id", ondelete="SET NULL"))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="SET NULL"))
    # Where it is about, for the outbox's scope.
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(300))
    # The e-mail address or webhook URL as the recipient had set it when the message was made.
    address: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(12))
    transport: Mapped[str | None] = mapped_column(String(10))  # smtp, outbox, webhook, in_app
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id"))


class NotificationPreference(Base):
    __tablename__ = "notification_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    in_app: Mapped[bool] = mapped_column(default=True)
    email: Mapped[bool] = mapped_column(default=True)
    email_address: Mapped[str | None] = mapped_column(String(254))
    webhook: Mapped[bool] = mapped_column(default=False)
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    digest: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class Preferences:
    in_app: bool = True
    email: bool = True
    email_address: str | None = None
    webhook: bool = False
    webhook_url: str | None = None
    digest: bool = False

    def channels(self) -> list[tuple[Channel, str | None]]:
        """The channels a message reaches this user on, with the address of each."""
        found: list[tuple[Channel, str | None]] = []
        if self.in_app:
            found.append((Channel.in_app, None))
        if self.email and self.email_address:
            found.append((Channel.email, self.email_address))
        if self.webhook and self.webhook_url:
            found.append((Channel.webhook, self.webhook_url))
        return found


def _as_preferences(row: NotificationPreference | None) -> Preferences:
    if row is None:
        return Preferences()
    return Preferences(in_app=row.in_app, email=row.email, email_address=row.email_address, webhook=row.webhook,
                       webhook_url=row.webhook_url, digest=row.digest)


def preferences_of(session: Session, *, user_id: int) -> Preferences:
    return _as_preferences(session.get(NotificationPreference, user_id))


def preferences_for(session: Session, user_ids: Iterable[int]) -> dict[int, Preferences]:
    wanted = set(user_ids)
    rows = session.scalars(select(NotificationPreference).where(NotificationPreference.user_id.in_(wanted))) if wanted else []
    found = {row.user_id: _as_preferences(row) for row in rows}
    return {uid: found.get(uid, Preferences()) for uid in wanted}


_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


def update_preferences(session: Session, *, actor: User, preferences: Preferences) -> Preferences:
    problems = []
    address = (preferences.email_address or "").strip() or None
    if address and (len(address) > 254 or not _EMAIL.match(address)):
        problems.append({"field": "email_address", "message": msg("电子邮箱：格式不正确")})
    url = (preferences.webhook_url or "").strip() or None
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
            problems.append({"field": "webhook_url", "message": msg("Webhook 地址：应为 http:// 或 https:// 开头的网址")})
    if preferences.webhook and not url:
        problems.append({"field": "webhook_url", "message": msg("Webhook 地址：启用群机器人通知时必填")})
    if preferences.email and preferences.digest and not address and not url:
        problems.append({"field": "digest", "message": msg("每日汇总：请先填写电子邮箱或 Webhook 地址")})
    if problems:
        raise RuleViolation(msg("通知设置有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    row = session.get(NotificationPreference, actor.id)
    before = None
    if row is None:
        row = NotificationPreference(user_id=actor.id)
        session.add(row)
    else:
        before = _as_dict(_as_preferences(row))
    row.in_app, row.email, row.email_address = preferences.in_app, preferences.email, address
    row.webhook, row.webhook_url, row.digest = preferences.webhook, url, preferences.digest
    row.updated_at = utcnow()
    session.flush()
    after = _as_preferences(row)
    record(session, actor=actor, action="notification.preferences", object_type="user", object_id=actor.id,
           before=before, after=_as_dict(after))
    return after


def give_demo_addresses(session: Session, *, usernames: list[str]) -> None:
    """The demo county's users get e-mail addresses at a reserved domain: nothing can be delivered there,
    and without an SMTP server the messages wait in the outbox for county_admin to read."""
    for user in session.scalars(select(User).where(User.username.in_(usernames))):
        update_preferences(session, actor=user, preferences=Preferences(email_address=f"{user.username}@demo.invalid"))


def _as_dict(preferences: Preferences) -> dict[str, Any]:
    return {"in_app": preferences.in_app, "email": preferences.email, "email_address": preferences.email_address,
            "webhook": preferences.webhook, "webhook_url": preferences.webhook_url, "digest": preferences.digest}


# --- messages ----------------------------------------------------------------------------------

_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "notification_templates"),
                         autoescape=False, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                         keep_trailing_newline=False, auto_reload=False)


@dataclass(frozen=True)
class Message:
    kind: Kind
    key: str  # the dedup key without recipient and channel, e.g. "task:12:before-3d@2026-09-10"
    subject: str
    body: str
    link: str | None = None  # a path in the app: "/tasks/12"
    task_id: int | None = None
    instance_id: int | None = None
    org_unit_id: int | None = None


def render(kind: Kind, *, key: str, link: str | None = None, task_id: int | None = None,
           instance_id: int | None = None, org_unit_id: int | None = None, **context: Any) -> Message:
    """A message from notification_templates/<kind>.txt: its first line is the subject, the rest the body."""
    base_url = get_settings().public_url.rstrip("/")
    text = _templates.get_template(f"{kind}.txt").render(url=base_url + link if link else None, base_url=base_url,
                                                         **context).strip()
    subject, _, body = text.partition("\n")
    return Message(kind=kind, key=key, subject=subject.strip()[:200], body=body.strip(), link=link, task_id=task_id,
                   instance_id=instance_id, org_unit_id=org_unit_id)


def rows_for(message: Message, recipients: Iterable[int], preferences: dict[int, Preferences],
             now: datetime) -> list[dict[str, Any]]:
    rows = []
    for uid in sorted(set(recipients)):
        prefs = preferences.get(uid, Preferences())
        for channel, address in prefs.channels():
            if channel == Channel.in_app:
                status, transport, sent_at = Status.sent, "in_app", now
            else:
                status = Status.held if prefs.digest and message.kind != Kind.digest else Status.pending
                transport, sent_at = None, None
            rows.append({"dedup_key": f"{message.key}:user:{uid}:{channel}", "recipient_id": uid, "channel": channel,
                         "kind": message.kind, "task_id": message.task_id, "instance_id": message.instance_id,
                         "org_unit_id": message.org_unit_id, "subject": message.subject, "body": message.body,
                         "link": message.link, "address": address, "status": status, "transport": transport,
                         "created_at": now, "next_attempt_at": now if status == Status.pending else None,
                         "attempts": 0, "sent_at": sent_at})
    return rows


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert, skipping any whose dedup key exists; returns the ids of the new rows to send.

    Ids drawn beforehand and no RETURNING: a 1000-row INSERT … RETURNING is one statement of 20k
    placeholders that psycopg parses anew each time, 5 times slower here (bench/RESULTS.md)."""
    if not rows:
        return []
    table = Notification.__table__
    ids = reserve_ids(session, table, len(rows))
    rows = [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)]
    dialect = postgresql if is_postgres(session) else sqlite
    conn = session.connection()
    conn.execute(dialect.insert(table).on_conflict_do_nothing(index_elements=["dedup_key"]), rows)
    pending = [row["id"] for row in rows if row["status"] == Status.pending]
    if not pending:
        return []
    # Only those made now: a key that existed kept its old row, and the id drawn for it stays unused.
    return sorted(conn.execute(select(table.c.id).where(table.c.id.in_(pending))).scalars())


def send(session: Session, *, message: Message, recipients: Iterable[int], now: datetime | None = None) -> list[int]:
    """Rows for every recipient on each channel they take; returns the ids to deliver (the poll finds them too)."""
    wanted = set(recipients)
    return insert_rows(session, rows_for(message, wanted, preferences_for(session, wanted), now or utcnow()))


def notify_initiator(session: Session, *, instance_id: int, message: str, now: datetime) -> list[int]:
    """The person who started an instance hears how it ended (a BPMN service task, registry/flows/common.py)."""
    instance = Base.metadata.tables["process_instance"]
    version = Base.metadata.tables["process_version"]
    row = session.execute(select(instance.c.started_by_id, instance.c.subject_label, instance.c.org_unit_id,
                                 version.c.name).join(version, version.c.id == instance.c.process_version_id)
                          .where(instance.c.id == instance_id)).one_or_none()
    if row is None or row.started_by_id is None:
        return []
    digest = f"{zlib.crc32(message.encode()):08x}"
    rendered = render(Kind.process_end, key=f"instance:{instance_id}:end:{digest}", link=f"/instances/{instance_id}",
                      instance_id=instance_id, org_unit_id=row.org_unit_id, process_name=row.name,
                      subject_label=row.subject_label or "", message=message)
    return send(session, message=rendered, recipients=[row.started_by_id], now=now)


def notify_process_error(session: Session, *, instance_id: int, element: str, message: str,
                         now: datetime, remedy: str | None = None) -> list[int]:
    """The process administrators over an instance (a grant at its org unit or above) hear that a script or
    service task of it failed and it waits in status error for them. In-app only: the fix is made in the app."""
    from registry.users import RoleGrant

    instance = Base.metadata.tables["process_instance"]
    version = Base.metadata.tables["process_version"]
    row = session.execute(select(instance.c.subject_label, instance.c.org_unit_id, version.c.name)
                          .join(version, version.c.id == instance.c.process_version_id)
                          .where(instance.c.id == instance_id)).one_or_none()
    if row is None:
        return []
    unit = session.get(OrgUnit, row.org_unit_id)
    ancestors = [int(part) for part in unit.path.strip("/").split("/")] if unit is not None else []
    admins = set(session.scalars(select(User.id).join(RoleGrant, RoleGrant.user_id == User.id).where(
        RoleGrant.role == Role.process_admin, RoleGrant.org_unit_id.in_(ancestors), User.active.is_(True))))
    if not admins:
        return []
    about = f"（{row.subject_label}）" if row.subject_label else ""
    link = f"/processes/instances/{instance_id}"
    base_url = get_settings().public_url.rstrip("/")
    rendered = Message(
        kind=Kind.process_error, key=f"instance:{instance_id}:error@{now:%Y%m%dT%H%M%S%f}", link=link,
        instance_id=instance_id, org_unit_id=row.org_unit_id,
        subject=f"【流程出错】{row.name}{about}：环节“{element}”执行失败"[:200],
        body=(f"流程“{row.name}”{about}的自动环节“{element}”执行失败，流程已停在该环节，等待处理。\n\n"
              f"错误信息：{message}\n\n{remedy or '请修正流程定义、将实例迁移到修正后的版本后重试'}：{base_url}{link}"))
    rows = [r for r in rows_for(rendered, admins, preferences_for(session, admins), now)
            if r["channel"] == Channel.in_app]
    return insert_rows(session, rows)


# --- the bell and the notifications page -------------------------------------------------------

def unread_count(session: Session, *, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.recipient_id == user_id, Notification.channel == Channel.in_app,
        Notification.read_at.is_(None))) or 0


def list_mine(session: Session, *, actor: User, unread_only: bool = False, limit: int = PAGE_SIZE,
              offset: int = 0) -> tuple[list[Notification], int]:
    query = select(Notification).where(Notification.recipient_id == actor.id, Notification.channel == Channel.in_app)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def mark_read(session: Session, *, actor: User, notification_id: int, now: datetime | None = None) -> Notification:
    row = session.get(Notification, notification_id)
    if row is None or row.recipient_id != actor.id or row.channel != Channel.in_app:
        raise NotFound(msg("找不到通知 {notification_id}", notification_id=notification_id))
    if row.read_at is None:
        row.read_at = now or utcnow()
        session.flush()
        record(session, actor=actor, action="notification.read", object_type="notification", object_id=row.id)
    return row


def mark_all_read(session: Session, *, actor: User, now: datetime | None = None) -> int:
    count = session.execute(update(Notification).where(
        Notification.recipient_id == actor.id, Notification.channel == Channel.in_app, Notification.read_at.is_(None))
        .values(read_at=now or utcnow()).execution_options(synchronize_session=False)).rowcount
    if count:
        record(session, actor=actor, action="notification.read_all", object_type="user", object_id=actor.id,
               after={"count": count})
    return count


# --- the outbox: county_admin's view of e-mails and failures -----------------------------------

class OutboxView(StrEnum):
    outbox = "outbox"  # e-mails kept here because no SMTP server is configured
    failed = "failed"  # given up after retries, any channel
    queued = "queued"  # waiting, being sent or held for a digest


def _admin_scope(actor: User) -> Any:
    if not any(g.role == Role.county_admin for g in actor.grants):
        raise PermissionDenied(msg("只有县教育局系统管理员可以查看发件箱"))
    return scope_clause(actor, OrgUnit.path, roles=[Role.county_admin])


def outbox(session: Session, *, actor: User, view: OutboxView = OutboxView.outbox, limit: int = PAGE_SIZE,
           offset: int = 0) -> tuple[list[tuple[Notification, User]], int]:
    """Messages about org units under the caller's county_admin grant (and system ones without a unit)."""
    scope = _admin_scope(actor)
    query = (select(Notification, User).join(User, User.id == Notification.recipient_id)
             .outerjoin(OrgUnit, OrgUnit.id == Notification.org_unit_id)
             .where(or_(Notification.org_unit_id.is_(None), scope)))
    if view == OutboxView.outbox:
        query = query.where(Notification.channel == Channel.email, Notification.transport == "outbox")
    elif view == OutboxView.failed:
        query = query.where(Notification.status == Status.failed)
    else:
        query = query.where(Notification.status.in_([Status.pending, Status.sending, Status.held]))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Notification.id.desc()).limit(limit).offset(offset)).all()
    return [(n, u) for n, u in rows], total


def failed_count(session: Session, *, actor: User) -> int:
    return outbox(session, actor=actor, view=OutboxView.failed, limit=1)[1]


def retry(session: Session, *, actor: User, notification_id: int, now: datetime | None = None) -> Notification:
    """county_admin sends a failed message again (after fixing the mail server or the address)."""
    scope = _admin_scope(actor)
    row = session.scalars(select(Notification).outerjoin(OrgUnit, OrgUnit.id == Notification.org_unit_id)
                          .where(Notification.id == notification_id,
                                 or_(Notification.org_unit_id.is_(None), scope))).one_or_none()
    if row is None:
        raise NotFound(msg("找不到通知 {notification_id}", notification_id=notification_id))
    if row.status != Status.failed:
        raise RuleViolation(msg("只有发送失败的通知可以重发"), details=[{"field": "status", "message": msg("不是发送失败")}])
    row.status, row.attempts, row.next_attempt_at = Status.pending, 0, now or utcnow()
    session.flush()
    record(session, actor=actor, action="notification.retry", object_type="notification", object_id=row.id,
           org_unit_id=row.org_unit_id, before={"status": Status.failed, "last_error": row.last_error},
           after={"status": Status.pending})
    return row


# --- sending bookkeeping (registry/delivery.py does the sending) --------------------------------

def claim(session: Session, *, now: datetime, lease_until: datetime, max_attempts: int, ids: list[int] | None = None,
          limit: int = 100) -> list[Notification]:
    """Rows due to go out (pending, or sending whose worker's lease ran out), marked as this worker's."""
    query = select(Notification).where(Notification.status.in_([Status.pending, Status.sending]),
                                       Notification.next_attempt_at <= now)
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    query = query.order_by(Notification.next_attempt_at, Notification.id).limit(limit)
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for row in session.scalars(query):
        if row.status == Status.sending and row.attempts >= max_attempts:
            # Its worker died while sending, again and again: stop before it becomes a stream.
            row.status, row.next_attempt_at = Status.failed, None
            row.last_error = f"发送过程中断 {row.attempts} 次 / the sending worker stopped {row.attempts} times"
            record(session, actor=None, action="notification.failed", object_type="notification", object_id=row.id,
                   org_unit_id=row.org_unit_id, after={"channel": row.channel, "attempts": row.attempts,
                                                       "error": row.last_error})
            continue
        row.status, row.attempts, row.next_attempt_at = Status.sending, row.attempts + 1, lease_until
        claimed.append(row)
    session.flush()
    return claimed


# The claim a worker holds on a row: its attempt number and lease end, both set by that worker's claim
# (or renewal). Any other claim changes both, so a row whose two still match is still this worker's.
_RENEW_CLAIM = (update(Notification.__table__)
                .where(Notification.id == bindparam("claimed_id"), Notification.status == Status.sending,
                       Notification.attempts == bindparam("claimed_attempts"),
                       Notification.next_attempt_at == bindparam("claimed_until"))
                .values(next_attempt_at=bindparam("until")))


def renew_claim(session: Session, *, notification_id: int, attempts: int, lease_until: datetime,
                until: datetime) -> bool:
    """Extend this worker's lease on a claimed row to `until`, right before sending it; False (and nothing
    changed) when it is no longer this worker's: its lease ran out and another worker claimed it, or it
    was recorded meanwhile. One statement, so the check and the renewal cannot be split by another claim."""
    result = session.connection().execute(_RENEW_CLAIM, {"claimed_id": notification_id, "claimed_attempts": attempts,
                                                         "claimed_until": lease_until, "until": until})
    return result.rowcount == 1


# Built once: it runs once per message sent, in a transaction of its own (bench/RESULTS.md). Not limited to
# the sender's own claim: the message is out, and a worker that claimed the row since must not send it again.
_RECORD_SENT = (update(Notification.__table__)
                .where(Notification.id == bindparam("sent_id"), Notification.status == Status.sending)
                .values(status=Status.sent, transport=bindparam("via"), sent_at=bindparam("at"), next_attempt_at=None,
                        last_error=None))


def record_sent(session: Session, *, notification_id: int, transport: str, now: datetime) -> None:
    session.connection().execute(_RECORD_SENT, {"sent_id": notification_id, "via": transport, "at": now})


def record_failure(session: Session, *, notification_id: int, attempts: int, lease_until: datetime, error: str,
                   now: datetime, retry_seconds: float, max_attempts: int) -> Status:
    """Back to pending after a growing pause, or failed after the last attempt (then audited, for county_admin).
    Only while the row is still the failing worker's claim (`attempts`, `lease_until`): another's is left alone."""
    row = session.get(Notification, notification_id, with_for_update=is_postgres(session))
    if row is None or row.status != Status.sending:
        return Status(row.status) if row else Status.failed
    if row.attempts != attempts or row.next_attempt_at != lease_until:
        return Status(row.status)
    row.last_error = error[:2000]
    if row.attempts >= max_attempts:
        row.status, row.next_attempt_at = Status.failed, None
        record(session, actor=None, action="notification.failed", object_type="notification", object_id=row.id,
               org_unit_id=row.org_unit_id, after={"channel": row.channel, "attempts": row.attempts,
                                                   "error": row.last_error})
    else:
        row.status = Status.pending
        row.next_attempt_at = now + timedelta(seconds=retry_seconds * 2 ** (row.attempts - 1))
    session.flush()
    return Status(row.status)


def compose_digests(session: Session, *, now: datetime) -> list[int]:
    """At DIGEST_TIME each day, everything held for a user and channel goes out as one message."""
    zone = local_zone()
    local = now.astimezone(zone)
    day = local.date() if local.time() >= DIGEST_TIME else local.date() - timedelta(days=1)
    cutoff = datetime.combine(day, DIGEST_TIME, tzinfo=zone)
    query = (select(Notification).where(Notification.status == Status.held, Notification.created_at <= cutoff)
             .order_by(Notification.recipient_id, Notification.channel, Notification.id))
    if is_postgres(session):
        # Two scans at once: the second skips what the first is digesting, instead of reading the same held
        # rows and composing them again. SQLite's write lock from BEGIN (make_engine) serializes them already.
        query = query.with_for_update(skip_locked=True)
    held = list(session.scalars(query))
    groups: dict[tuple[int, str], list[Notification]] = {}
    for row in held:
        groups.setdefault((row.recipient_id, row.channel), []).append(row)
    ids = []
    for (uid, channel), rows in groups.items():
        message = render(Kind.digest, key=f"digest:{day.isoformat()}:{rows[0].id}-{rows[-1].id}", link="/notifications",
                         day=day, items=rows)
        digest = {"dedup_key": f"{message.key}:user:{uid}:{channel}", "recipient_id": uid, "channel": channel,
                  "kind": Kind.digest, "subject": message.subject, "body": message.body, "link": message.link,
                  "address": rows[-1].address, "status": Status.pending, "created_at": now, "next_attempt_at": now,
                  "attempts": 0}
        digest_id = session.connection().execute(insert(Notification.__table__).returning(
            Notification.__table__.c.id), digest).scalar_one()
        session.execute(update(Notification).where(and_(Notification.id.in_([r.id for r in rows]),
                                                        Notification.status == Status.held))
                        .values(status=Status.digested, digest_id=digest_id)
                        .execution_options(synchronize_session=False))
        ids.append(digest_id)
    return ids


def may_read_outbox(actor: User) -> bool:
    return any(g.role == Role.county_admin for g in actor.grants)

