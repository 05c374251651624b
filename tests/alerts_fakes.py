"""Local stand-ins for the alert channels' servers: a fake Telegram Bot API over HTTPS (with a
self-signed certificate made here with ``cryptography``) and an SMTP server (aiosmtpd).

Both listen on 127.0.0.1 on a free port, record what they receive, and are stopped by the test
that started them (context managers).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key (PEM files in ``folder``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "botclave test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@dataclass
class BotRequest:
    """One request the fake Bot API received; ``at``: time.monotonic() on arrival."""

    method: str
    path: str
    body: dict[str, Any]
    at: float


@dataclass
class FakeBotApi:
    """Telegram's Bot API as far as ``sendMessage`` goes. ``script`` holds (status, JSON body)
    answers given in order before the default ``{"ok": true}``."""

    cert: Path
    key: Path
    token: str
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[BotRequest] = field(default_factory=list)

    def __enter__(self) -> FakeBotApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                api.requests.append(BotRequest("POST", self.path, body, time.monotonic()))
                if self.path != f"/bot{api.token}/sendMessage":
                    status, answer = 401, {"ok": False, "error_code": 401,
                                           "description": "Unauthorized"}
                elif api.script:
                    status, answer = api.script.pop(0)
                else:
                    status, answer = 200, {"ok": True, "result": {
                        "message_id": len(api.requests), "chat": {"id": body.get("chat_id")},
                        "text": body.get("text")}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = server_context(self.cert, self.key).wrap_socket(
            self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def texts(self) -> list[str]:
        return [r.body.get("text", "") for r in self.requests]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[BotRequest]:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.requests)

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def free_port() -> int:
    """A port free on 127.0.0.1 now (aiosmtpd's controller needs a number, not 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1: collects mails; with ``user``/``password`` it requires AUTH
    (allowed without TLS so that plain smtp:// is testable); ``tls`` makes it smtps://."""

    user: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None

    def __enter__(self) -> SmtpSink:
        self.handler = _Collect()
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs.update(authenticator=self._auth, auth_required=True,
                          auth_require_tls=False)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port(),
                                     ssl_context=self.tls, **kwargs)
        self.controller.start()
        return self

    def _auth(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def messages(self) -> list[tuple[str, list[str], Message]]:
        return self.handler.messages

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.messages)

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
