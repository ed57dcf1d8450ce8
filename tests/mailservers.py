"""Real receivers on 127.0.0.1 for notification tests: an SMTP server (aiosmtpd) and a webhook
receiver (http.server), each in a thread of the test process, recording what they accepted."""

import asyncio
import json
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USERNAME = "mealroll"
PASSWORD = "smtp-secret-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpSink:
    """Accepts mail (or refuses it while `refuse` is set) and keeps each accepted message.

    `hold` (an Event) makes the server wait before answering DATA: the message is in, the
    client has no "250" yet — the moment a crash repeats a message. `delay` (seconds) makes it a
    slow relay: each message takes that long before it is taken, other connections carrying on."""

    messages: list[EmailMessage] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)  # the envelope's MAIL FROM of each accepted message
    refuse: str | None = None
    hold: threading.Event | None = None
    delay: float = 0.0
    received: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse:
            return self.refuse
        message = message_from_bytes(envelope.content or b"", policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.senders.append(str(envelope.mail_from))
        self.received.set()
        if self.hold is not None:
            self.hold.wait(60)
        return "250 OK"

    def ids(self) -> list[str]:
        return [str(m["X-Mealroll-Notification"]) for m in self.messages]


def _authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USERNAME.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # False: the server answers 235 or 535 itself


def start_smtp(sink: SmtpSink, *, tls_cert: tuple[Path, Path] | None = None) -> Controller:
    """An SMTP server on 127.0.0.1 that wants a login (and STARTTLS first when given a certificate)."""
    kwargs: dict[str, Any] = {}
    if tls_cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls_cert)
        kwargs.update(tls_context=context, require_starttls=True)
    # Without TLS the login is offered and checked but not demanded: aiosmtpd warns (an error under
    # pytest) about a server that demands a login in plain text.
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), authenticator=_authenticate,
                            auth_required=tls_cert is not None, auth_require_tls=tls_cert is not None, **kwargs)
    controller.start()
    return controller


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "smtp.crt", folder / "smtp.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@dataclass
class WebhookSink:
    posts: list[dict[str, Any]] = field(default_factory=list)  # those answered with a 2xx status
    headers: list[dict[str, str]] = field(default_factory=list)
    calls: int = 0  # every post, whatever the answer
    status: int = 200
    location: str | None = None  # with a 3xx status: where the receiver redirects


def stop_webhook(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def start_webhook(sink: WebhookSink) -> tuple[ThreadingHTTPServer, str]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            sink.calls += 1
            if sink.status < 300:
                sink.posts.append(json.loads(body))
                sink.headers.append(dict(self.headers))
            self.send_response(sink.status)
            if sink.location:
                self.send_header("Location", sink.location)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode":0}')

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/bot/send?key=test"
