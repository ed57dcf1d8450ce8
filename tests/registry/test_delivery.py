"""Sending notifications to a real SMTP server (aiosmtpd) and a real webhook receiver on 127.0.0.1:
login and STARTTLS, the configured sender, the outbox without SMTP, dedup, retries with backoff (SMTP
and webhook) then a failure county_admin sees, a row another worker claimed after the lease ran out,
and a crash between send and record repeating that one message only. Two workers at once:
tests/registry/test_concurrency.py."""

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from registry import delivery, notifications
from registry.audit import AuditEntry
from registry.errors import PermissionDenied, RuleViolation
from registry.notifications import Channel, Kind, Notification, OutboxView, Preferences, Status
from registry.org_units import find_org_unit
from registry.settings import Settings
from tests.factories import user
from tests.mailservers import (
    PASSWORD,
    USERNAME,
    SmtpSink,
    WebhookSink,
    self_signed_cert,
    start_smtp,
    start_webhook,
    stop_webhook,
)

NOW = datetime(2026, 9, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _earlier_messages_stay_quiet(session: Session) -> None:
    """Messages other tests committed to the shared database are not this test's to send (undone with
    the test's transaction)."""
    session.execute(update(Notification).where(Notification.status.in_([Status.pending, Status.sending]))
                    .values(status=Status.sent))
    session.commit()


@pytest.fixture
def sink() -> SmtpSink:
    return SmtpSink()


@pytest.fixture
def smtp(sink: SmtpSink) -> Iterator[int]:
    controller = start_smtp(sink)
    yield controller.port
    controller.stop()


def mail_settings(port: int | None, **extra: object) -> Settings:
    values: dict[str, object] = {"env": "test", "smtp_starttls": False, "notify_retry_seconds": 60,
                                 "notify_max_attempts": 3}
    if port is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=port, smtp_username=USERNAME, smtp_password=PASSWORD)
    return Settings(**{**values, **extra})  # type: ignore[arg-type]


def reminder(session: Session, username: str = "principal1", *, key: str = "task:0:test", **prefs: object) -> list[int]:
    actor = user(session, username)
    notifications.update_preferences(session, actor=actor, preferences=Preferences(**prefs))  # type: ignore[arg-type]
    message = notifications.render(Kind.reminder, key=key, link="/tasks/7", title="校长审核", subject_label="张小明",
                                   org_unit="城关镇中心小学", role="校长", due="2026年9月4日 10:00", claimed=False, days=1,
                                   org_unit_id=find_org_unit(session, code="2152019901").id)
    ids = notifications.send(session, message=message, recipients=[actor.id], now=NOW)
    session.commit()
    return ids


def row(session: Session, notification_id: int) -> Notification:
    found = session.get(Notification, notification_id)
    assert found is not None
    session.refresh(found)
    return found


def test_an_email_goes_to_the_smtp_server_with_login_and_is_recorded_sent(
        session: Session, sessions: sessionmaker[Session], smtp: int, sink: SmtpSink) -> None:
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    assert delivery.deliver(sessions, settings=mail_settings(smtp), now=NOW) == 1
    (message,) = sink.messages
    assert message["To"] == "wang@school.example.cn"
    assert message["Subject"] == "【待办提醒】校长审核（张小明）还有 1 天到期"
    assert "http://127.0.0.1:8000/tasks/7" in message.get_content()
    assert message["Message-ID"].startswith(f"<notification-{mail_id}") or f"notification-{mail_id}" in message["Message-ID"]
    sent = row(session, mail_id)
    assert (sent.status, sent.transport, sent.attempts, sent.sent_at) == (Status.sent, "smtp", 1, NOW)
    assert delivery.deliver(sessions, settings=mail_settings(smtp), now=NOW + timedelta(hours=1)) == 0
    assert len(sink.messages) == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate")
def test_starttls_against_a_server_that_demands_it(session: Session, sessions: sessionmaker[Session],
                                                   sink: SmtpSink, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    controller = start_smtp(sink, tls_cert=(cert, key))
    try:
        (mail_id,) = reminder(session, email_address="wang@school.example.cn")
        plain = mail_settings(controller.port)
        assert delivery.deliver(sessions, settings=plain, now=NOW) == 0  # the server refuses mail without TLS
        assert "SMTP" in (row(session, mail_id).last_error or "")
        tls = mail_settings(controller.port, smtp_starttls=True, smtp_ca_file=cert)
        assert delivery.deliver(sessions, settings=tls, now=NOW + timedelta(minutes=2)) == 1
        assert len(sink.messages) == 1 and row(session, mail_id).status == Status.sent
    finally:
        controller.stop()


def test_without_an_smtp_server_emails_are_kept_in_the_outbox_for_county_admin(
        session: Session, sessions: sessionmaker[Session]) -> None:
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    assert delivery.deliver(sessions, settings=mail_settings(None), now=NOW) == 1
    assert row(session, mail_id).transport == "outbox"
    rows, total = notifications.outbox(session, actor=user(session, "admin"))
    assert total == 1 and rows[0][0].id == mail_id and rows[0][1].username == "principal1"
    with pytest.raises(PermissionDenied):
        notifications.outbox(session, actor=user(session, "reviewer"))


def test_the_configured_sender_is_the_from_header_and_the_envelope_sender(
        session: Session, sessions: sessionmaker[Session], smtp: int, sink: SmtpSink) -> None:
    reminder(session, email_address="wang@school.example.cn")
    # What MEALROLL_SMTP_SENDER sets: a county's own name and mailbox instead of the default noreply@localhost.
    settings = mail_settings(smtp, smtp_sender="平塘县教育局营养办 <yyb@pingtang.example.cn>")
    assert delivery.deliver(sessions, settings=settings, now=NOW) == 1
    (message,) = sink.messages
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("平塘县教育局营养办", "yyb@pingtang.example.cn")
    assert sink.senders == ["yyb@pingtang.example.cn"]
    assert message["Message-ID"].endswith("@pingtang.example.cn>")


def test_a_webhook_gets_the_message_as_json_with_an_idempotency_key(
        session: Session, sessions: sessionmaker[Session]) -> None:
    hook = WebhookSink()
    server, url = start_webhook(hook)
    try:
        (hook_id,) = reminder(session, email=False, webhook=True, webhook_url=url)
        # The receiver runs on 127.0.0.1: allowed here as a gateway inside the county's network would be.
        assert delivery.deliver(sessions, settings=mail_settings(None, webhook_allow_private=True), now=NOW) == 1
    finally:
        stop_webhook(server)
    (payload,) = hook.posts
    assert payload["msgtype"] == "text" and payload["text"]["content"].startswith("【待办提醒】校长审核")
    assert payload["mealroll"]["url"] == "http://127.0.0.1:8000/tasks/7" and payload["mealroll"]["id"] == hook_id
    assert hook.headers[0]["Idempotency-Key"].endswith(":webhook")
    assert row(session, hook_id).transport == "webhook"


def test_the_same_reminder_made_twice_is_one_row_per_channel(session: Session) -> None:
    first = reminder(session, email_address="wang@school.example.cn")
    again = reminder(session, email_address="wang@school.example.cn")
    assert len(first) == 1 and again == []
    rows = session.scalars(select(Notification).where(Notification.dedup_key.like("task:0:test:%"))).all()
    assert sorted(r.channel for r in rows) == [Channel.email, Channel.in_app]


def test_a_failing_server_is_retried_with_backoff_then_the_failure_is_visible_to_county_admin(
        session: Session, sessions: sessionmaker[Session], smtp: int, sink: SmtpSink) -> None:
    sink.refuse = "451 4.3.0 mailbox temporarily unavailable"
    settings = mail_settings(smtp)
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    assert delivery.deliver(sessions, settings=settings, now=NOW) == 0
    first = row(session, mail_id)
    assert (first.status, first.attempts, first.next_attempt_at) == (Status.pending, 1, NOW + timedelta(seconds=60))
    assert "451" in (first.last_error or "")
    assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=30)) == 0  # not yet
    assert row(session, mail_id).attempts == 1
    assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=60)) == 0
    assert row(session, mail_id).next_attempt_at == NOW + timedelta(seconds=60 + 120)
    assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=180)) == 0
    failed = row(session, mail_id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == (Status.failed, 3, None)
    rows, total = notifications.outbox(session, actor=user(session, "admin"), view=OutboxView.failed)
    assert total == 1 and rows[0][0].id == mail_id
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "notification",
                                                           AuditEntry.object_id == str(mail_id))).all() == [
        "notification.failed"]

    # County admin fixes the server and sends it again.
    sink.refuse = None
    with pytest.raises(PermissionDenied):
        notifications.retry(session, actor=user(session, "reviewer"), notification_id=mail_id)
    notifications.retry(session, actor=user(session, "admin"), notification_id=mail_id, now=NOW + timedelta(hours=1))
    session.commit()
    with pytest.raises(RuleViolation):
        notifications.retry(session, actor=user(session, "admin"), notification_id=mail_id)
    assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(hours=1)) == 1
    assert row(session, mail_id).status == Status.sent and len(sink.messages) == 1


def test_a_webhook_answering_500_is_retried_with_backoff_then_the_failure_is_visible_to_county_admin(
        session: Session, sessions: sessionmaker[Session]) -> None:
    hook = WebhookSink(status=500)
    server, url = start_webhook(hook)
    settings = mail_settings(None, webhook_allow_private=True)  # the receiver runs on 127.0.0.1
    try:
        (hook_id,) = reminder(session, email=False, webhook=True, webhook_url=url)
        assert delivery.deliver(sessions, settings=settings, now=NOW) == 0
        first = row(session, hook_id)
        assert (first.status, first.attempts, first.next_attempt_at) == (Status.pending, 1, NOW + timedelta(seconds=60))
        assert "HTTP 500" in (first.last_error or "")
        assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=59)) == 0  # not yet
        assert hook.calls == 1
        assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=60)) == 0
        assert row(session, hook_id).next_attempt_at == NOW + timedelta(seconds=60 + 120)
        assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=180)) == 0
    finally:
        stop_webhook(server)
    failed = row(session, hook_id)
    assert (failed.status, failed.attempts, failed.next_attempt_at, hook.calls) == (Status.failed, 3, None, 3)
    assert hook.posts == []
    rows, total = notifications.outbox(session, actor=user(session, "admin"), view=OutboxView.failed)
    assert total == 1 and rows[0][0].id == hook_id and rows[0][0].channel == Channel.webhook
    assert notifications.failed_count(session, actor=user(session, "admin")) == 1
    with pytest.raises(PermissionDenied):
        notifications.outbox(session, actor=user(session, "township1"), view=OutboxView.failed)
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "notification",
                                                           AuditEntry.object_id == str(hook_id))).all() == [
        "notification.failed"]


def test_a_row_claimed_again_after_its_lease_ran_out_is_no_longer_the_first_workers(
        session: Session, sessions: sessionmaker[Session]) -> None:
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    lease = NOW + timedelta(seconds=120)
    with sessions() as s, s.begin():
        (first,) = notifications.claim(s, now=NOW, lease_until=lease, max_attempts=5)
        assert notifications.renew_claim(s, notification_id=mail_id, attempts=first.attempts, lease_until=lease,
                                         until=lease)
    # The first worker stalls past its lease; another worker claims the row.
    later = NOW + timedelta(seconds=121)
    with sessions() as s, s.begin():
        (second,) = notifications.claim(s, now=later, lease_until=later + timedelta(seconds=120), max_attempts=5)
    with sessions() as s, s.begin():
        # The first may neither send it (its renewal fails) nor put it back to pending with its late failure.
        assert not notifications.renew_claim(s, notification_id=mail_id, attempts=first.attempts, lease_until=lease,
                                             until=later + timedelta(seconds=120))
        assert notifications.record_failure(s, notification_id=mail_id, attempts=first.attempts, lease_until=lease,
                                            error="timeout", now=later, retry_seconds=60,
                                            max_attempts=5) == Status.sending
    held = row(session, mail_id)
    assert (held.status, held.attempts, held.next_attempt_at, held.last_error) == (
        Status.sending, second.attempts, later + timedelta(seconds=120), None)
    with sessions() as s, s.begin():
        assert notifications.renew_claim(s, notification_id=mail_id, attempts=second.attempts,
                                         lease_until=later + timedelta(seconds=120), until=later + timedelta(seconds=150))


def test_a_wrong_smtp_password_is_a_failure_to_retry(session: Session, sessions: sessionmaker[Session],
                                                     smtp: int, sink: SmtpSink) -> None:
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    assert delivery.deliver(sessions, settings=mail_settings(smtp, smtp_password="wrong"), now=NOW) == 0
    assert "SMTPAuthenticationError" in (row(session, mail_id).last_error or "") and sink.messages == []


def test_a_server_that_is_down_is_a_retry_not_a_crash(session: Session, sessions: sessionmaker[Session]) -> None:
    settings = mail_settings(1)  # nothing listens on port 1
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    assert delivery.deliver(sessions, settings=settings, now=NOW) == 0
    assert row(session, mail_id).status == Status.pending and "SMTP" in (row(session, mail_id).last_error or "")


def test_a_crash_between_send_and_record_repeats_that_one_message_only(
        session: Session, sessions: sessionmaker[Session], smtp: int, sink: SmtpSink) -> None:
    settings = mail_settings(smtp, notify_lease_seconds=120)
    ids = [reminder(session, email_address="wang@school.example.cn", key=f"task:0:step{i}")[0] for i in range(3)]
    # A worker claims all three, hands the first to the server, and dies before recording it.
    with sessions() as s, s.begin():
        notifications.claim(s, now=NOW, lease_until=NOW + timedelta(seconds=120), max_attempts=5)
    out = delivery.Outbound(settings)
    out.send(delivery.Outgoing(id=ids[0], dedup_key="", channel=Channel.email, kind="reminder",
                               address="wang@school.example.cn", subject="x", body="x", link=None, task_id=None,
                               created_at=NOW, attempts=1, lease_until=NOW + timedelta(seconds=120)))
    out.close()
    # While its lease runs, nobody else sends them.
    assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=60)) == 0
    assert delivery.deliver(sessions, settings=settings, now=NOW + timedelta(seconds=121)) == 3
    assert sorted(sink.ids()) == sorted([str(ids[0]), *map(str, ids)])  # the first twice, the others once
    assert {row(session, i).status for i in ids} == {Status.sent}


def test_a_held_smtp_answer_leaves_only_that_message_unrecorded(session: Session, sessions: sessionmaker[Session],
                                                                 smtp: int, sink: SmtpSink) -> None:
    """The server has the message but has not said "250" when the sender stops: the row stays `sending`."""
    settings = mail_settings(smtp, smtp_timeout_seconds=1)
    sink.hold = threading.Event()
    (mail_id,) = reminder(session, email_address="wang@school.example.cn")
    try:
        assert delivery.deliver(sessions, settings=settings, now=NOW) == 0
    finally:
        sink.hold.set()
    assert len(sink.messages) == 1
    assert row(session, mail_id).status == Status.pending  # a timeout is a failure: retried after the pause


def test_a_webhook_to_a_private_address_or_a_redirect_is_refused(
        session: Session, sessions: sessionmaker[Session]) -> None:
    hook = WebhookSink()
    server, url = start_webhook(hook)
    try:
        (hook_id,) = reminder(session, email=False, webhook=True, webhook_url=url)
        assert delivery.deliver(sessions, settings=mail_settings(None), now=NOW) == 0
        refused = row(session, hook_id)
        assert hook.posts == [] and refused.status == Status.pending and "内网或保留地址 127.0.0.1" in refused.last_error
        for private in ("http://10.0.0.8/hook", "http://169.254.169.254/latest/meta-data", "http://[::1]:6379/",
                        "http://localhost:6379/"):
            with pytest.raises(delivery.DeliveryError, match="内网或保留地址"):
                delivery.refuse_private_target(private)
        # Allowed to the address, but the receiver redirects: not followed, since the target was never checked.
        hook.status, hook.location = 302, "http://169.254.169.254/latest/meta-data"
        allowed = mail_settings(None, webhook_allow_private=True)
        assert delivery.deliver(sessions, settings=allowed, now=NOW + timedelta(minutes=5)) == 0
        assert "HTTP 302" in row(session, hook_id).last_error
    finally:
        stop_webhook(server)
