"""County_admin learns of failed sends on the home page, not only by opening the outbox: a message a real
SMTP server refused until the last attempt shows as a counted line linking to the failed view."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from registry import delivery, notifications
from registry.notifications import Kind, Notification, Preferences, Status
from registry.org_units import find_org_unit
from registry.settings import Settings
from tests.api.test_pages import login
from tests.factories import user
from tests.mailservers import PASSWORD, USERNAME, SmtpSink, start_smtp

NOW = datetime(2026, 9, 3, 1, tzinfo=UTC)
SIGNAL = re.compile(r'<p class="notice warn" id="failed-sends" role="alert"><a href="/notifications/outbox\?view=failed">(\d+) 条通知发送失败')


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    controller = start_smtp(SmtpSink(refuse="550 5.1.1 mailbox unavailable"))
    yield controller.port
    controller.stop()


def failed_mails(session: Session, sessions: sessionmaker[Session], port: int, n: int) -> None:
    # Messages other tests committed to the shared database are not this test's to send (rolled back with it).
    session.execute(update(Notification).where(Notification.status.in_([Status.pending, Status.sending]))
                    .values(status=Status.sent))
    principal = user(session, "principal1")
    notifications.update_preferences(session, actor=principal,
                                     preferences=Preferences(email_address="wang@school.example.cn"))
    for i in range(n):
        message = notifications.render(Kind.reminder, key=f"home-signal:{i}", link="/tasks/7", title="校长审核",
                                       subject_label="张小明", org_unit="城关镇中心小学", role="校长",
                                       due="2026年9月4日 10:00", claimed=False, days=1,
                                       org_unit_id=find_org_unit(session, code="2152019901").id)
        notifications.send(session, message=message, recipients=[principal.id], now=NOW)
    session.commit()
    settings = Settings(env="test", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                        smtp_username=USERNAME, smtp_password=PASSWORD, notify_max_attempts=1)
    assert delivery.deliver(sessions, settings=settings, now=NOW) == 0


def test_county_admin_sees_how_many_sends_failed_on_the_home_page(client: TestClient, session: Session,
                                                                   sessions: sessionmaker[Session],
                                                                   refusing_smtp: int) -> None:
    login(client, "admin")
    assert 'id="failed-sends"' not in client.get("/").text  # nothing failed: no line

    failed_mails(session, sessions, refusing_smtp, 2)
    home = client.get("/")
    match = SIGNAL.search(home.text)
    assert home.status_code == 200 and match and int(match[1]) == notifications.failed_count(
        session, actor=user(session, "admin")) == 2
    assert "550" in client.get("/notifications/outbox?view=failed").text

    for other in ("reviewer", "principal1"):  # the outbox is county_admin's: nobody else gets the line
        login(client, other)
        assert 'id="failed-sends"' not in client.get("/").text
