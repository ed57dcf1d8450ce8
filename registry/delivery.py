"""Sending notifications: SMTP (STARTTLS, login), the outbox when no SMTP server is set, and webhooks.

Each message: claimed (its own transaction, with the others of the batch), its lease renewed right
before it is handed over — or skipped if another worker has claimed it since — and recorded as sent
in a transaction of its own as soon as the server accepted it (registry/notifications.py says why
that makes "exactly once" hold up to one repeat after a crash). The Message-ID and the webhook's
Idempotency-Key are the row's, so even that one repeat can be recognised by the receiver.
"""

import hashlib
import ipaddress
import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from types import TracebackType
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from registry import notifications
from registry.db import unit_of_work, utcnow
from registry.notifications import Channel
from registry.settings import Settings

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_SECONDS = 10


class DeliveryError(Exception):
    """The server did not take the message; worth another try later."""


@dataclass(frozen=True)
class Outgoing:
    """What a worker needs to send one claimed row: plain values, no session."""

    id: int
    dedup_key: str
    channel: str
    kind: str
    address: str | None
    subject: str
    body: str
    link: str | None
    task_id: int | None
    created_at: datetime
    # This worker's claim on the row, as its claim set it: what renew_claim and record_failure check.
    attempts: int
    lease_until: datetime


class Outbound:
    """One SMTP connection for a batch of e-mails, opened for the first and dropped after any error."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> "Outbound":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, item: Outgoing) -> str:
        """Hand one message over; returns the transport that took it. Raises DeliveryError."""
        if item.channel == Channel.email:
            if not self.settings.smtp_host:
                return "outbox"  # nothing to hand it to: kept for county_admin's outbox page
            self._send_mail(item)
            return "smtp"
        if item.channel == Channel.webhook:
            self._post(item)
            return "webhook"
        raise DeliveryError(f"unknown channel {item.channel}")

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp = smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.smtp_timeout_seconds)
        try:
            smtp.ehlo()
            if s.smtp_starttls:
                context = ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send_mail(self, item: Outgoing) -> None:
        # The compat32 MIME classes, flattened once: EmailMessage with the default policy cost ~4 ms of
        # CPU per message here, more than the SMTP exchange itself (bench/RESULTS.md).
        name, address = parseaddr(self.settings.smtp_sender)
        message = MIMEText(item.body, "plain", "utf-8")
        message["From"] = formataddr((name, address), charset="utf-8")
        message["To"] = item.address or ""
        message["Subject"] = Header(item.subject, "utf-8")
        message["Date"] = formatdate(usegmt=True)
        # The same id on a repeat after a crash: mail clients show the two as one.
        digest = hashlib.sha256(item.dedup_key.encode()).hexdigest()[:16]
        message["Message-ID"] = f"<notification-{item.id}.{digest}@{address.rpartition('@')[2] or 'mealroll'}>"
        message["X-Mealroll-Notification"] = str(item.id)
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.sendmail(address, [item.address or ""], message.as_bytes())
        except (smtplib.SMTPException, OSError, ssl.SSLError) as err:
            self.close()
            raise DeliveryError(f"SMTP：{type(err).__name__}: {err}") from err

    def _post(self, item: Outgoing) -> None:
        base = self.settings.public_url.rstrip("/")
        text = f"{item.subject}\n{item.body}"
        payload = {
            # The text message WeCom and DingTalk group bots take as it is; other receivers read "mealroll".
            "msgtype": "text", "text": {"content": text},
            "mealroll": {"id": item.id, "kind": item.kind, "subject": item.subject, "body": item.body,
                         "url": base + item.link if item.link else None, "task_id": item.task_id,
                         "created_at": item.created_at.isoformat()},
        }
        url = item.address or ""
        if not self.settings.webhook_allow_private:
            refuse_private_target(url)
        request = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(),
                                         method="POST", headers={"Content-Type": "application/json; charset=utf-8",
                                                                 "Idempotency-Key": item.dedup_key})
        try:
            with _NO_REDIRECTS.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                response.read(1024)
        except urllib.error.HTTPError as err:
            raise DeliveryError(f"Webhook：HTTP {err.code} {err.reason}") from err
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DeliveryError(f"Webhook：{type(err).__name__}: {err}") from err


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that answers with a redirect is not followed: the new address was never checked."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise urllib.error.HTTPError(req.full_url, code, f"重定向到 {newurl}，未跟随", headers, fp)


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def refuse_private_target(url: str) -> None:
    """SSRF guard: every address the webhook's host name resolves to must be a public one (not loopback,
    private, link-local, multicast or reserved). Checked right before each post; a host that resolves
    differently between this check and the connection (DNS rebinding) is the remaining gap."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("Webhook：地址应为 http:// 或 https:// 开头的网址")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise DeliveryError(f"Webhook：无法解析主机名 {parts.hostname}：{err}") from err
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise DeliveryError(f"Webhook：{parts.hostname} 指向内网或保留地址 {address}，已拒绝发送"
                                "（如确需发往内网机器人网关，由管理员设置 MEALROLL_WEBHOOK_ALLOW_PRIVATE=true）")


def deliver(factory: sessionmaker[Session], *, settings: Settings, ids: list[int] | None = None,
            now: datetime | None = None, limit: int = 200) -> int:
    """Send up to `limit` due messages (only those among `ids` when given); returns how many went out.
    `now` fixes the clock (tests); otherwise each record carries the moment it was made."""
    start = now or utcnow()
    lease = timedelta(seconds=settings.notify_lease_seconds)
    with unit_of_work(factory) as session:
        claimed = [Outgoing(id=n.id, dedup_key=n.dedup_key, channel=n.channel, kind=n.kind, address=n.address,
                            subject=n.subject, body=n.body, link=n.link, task_id=n.task_id, created_at=n.created_at,
                            attempts=n.attempts, lease_until=start + lease)
                   for n in notifications.claim(session, now=start, ids=ids, limit=limit,
                                                max_attempts=settings.notify_max_attempts, lease_until=start + lease)]
    sent = 0
    with Outbound(settings) as out, _records(factory) as records:
        for item in claimed:
            # The claim's lease covers the whole batch, which a slow server can outlast; another worker's flush
            # then claims the rest. Renewed before each send, or skipped once it is another's: no message goes
            # out from two workers, and a crash leaves only this one message sending until its lease runs out.
            until = (now or utcnow()) + lease
            with records.begin():
                mine = notifications.renew_claim(records, notification_id=item.id, attempts=item.attempts,
                                                 lease_until=item.lease_until, until=until)
            if not mine:
                log.info("notification %s skipped: claimed by another worker after this one's lease ran out", item.id)
                continue
            try:
                transport = out.send(item)
            except DeliveryError as err:
                log.warning("notification %s not sent: %s", item.id, err)
                with unit_of_work(factory) as session:
                    notifications.record_failure(session, notification_id=item.id, attempts=item.attempts,
                                                 lease_until=until, error=str(err), now=now or utcnow(),
                                                 retry_seconds=settings.notify_retry_seconds,
                                                 max_attempts=settings.notify_max_attempts)
                continue
            with records.begin():
                notifications.record_sent(records, notification_id=item.id, transport=transport, now=now or utcnow())
            sent += 1
    return sent


@contextmanager
def _records(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Where each send is recorded, committed on its own the moment its message was taken: one connection
    for the batch, in autocommit on PostgreSQL (the record is one statement), so a record costs one round
    trip instead of a pool checkout, a ping, BEGIN, UPDATE and COMMIT (bench/RESULTS.md)."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):  # bound to a connection already (the tests' rolled-back transaction)
        with factory() as session:
            yield session
        return
    with bind.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        with Session(bind=connection, expire_on_commit=False) as session:
            yield session
