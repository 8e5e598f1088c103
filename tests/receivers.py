"""Real local receivers for notification tests: an HTTP server and an SMTP server that record what
they get. No mocks: Lazarus's notifiers talk to them over TCP exactly as to Slack, PagerDuty, a
webhook or a mail relay.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Request:
    """One request the HTTP receiver got."""

    path: str
    headers: dict[str, str]
    body: Any


class HttpReceiver:
    """Records every POST; answers from a script of (status, body) pairs, then 200 ``ok``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: deque[tuple[int, str]] = deque()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    receiver.requests.append(Request(self.path, dict(self.headers), json.loads(raw)))
                    status, text = receiver.script.popleft() if receiver.script else (200, "ok")
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message


@dataclass
class _Handler:
    mails: list[Mail] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = message_from_bytes(content, policy=policy.default)
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on loopback; with ``login`` it requires AUTH with it."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self._handler = _Handler()
        self.port = free_port()
        options: dict[str, Any] = {}
        if login is not None:

            def authenticate(
                server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == login
                return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

            # Plain-text AUTH is fine on loopback (aiosmtpd warns about it; tests filter that warning).
            options = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()

    @property
    def mails(self) -> list[Mail]:
        return self._handler.mails

    @property
    def refused(self) -> set[str]:
        return self._handler.refused

    def close(self) -> None:
        self._controller.stop()
