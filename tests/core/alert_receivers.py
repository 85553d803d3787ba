"""Real local receivers for alert tests: an HTTP server (http.server in a thread) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class WebhookReceiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests first


@contextmanager
def webhook_receiver(path: str = "/services/T000/B000/s3cr3t-token") -> Iterator[WebhookReceiver]:
    state = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if state.fail_next:
                state.fail_next -= 1
                self.send_response(500)
                self.end_headers()
                return
            state.bodies.append(json.loads(body))
            state.paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class MailServer:
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@contextmanager
def smtp_server(user: str, password: str) -> Iterator[MailServer]:
    """An SMTP server on 127.0.0.1 with AUTH LOGIN/PLAIN (without TLS: loopback only) accepting ``user``/``password``."""
    state = MailServer(port=0)

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
            state.messages.append(message_from_bytes(envelope.original_content))
            return "250 OK"

    def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
        if ok:
            state.logins.append(user)
        return AuthResult(success=ok)

    with socket.socket() as probe:  # aiosmtpd's start() connects to its port to check it: it needs a real one
        probe.bind(("127.0.0.1", 0))
        state.port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=state.port, authenticator=authenticate,
                            auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield state
    finally:
        controller.stop()
