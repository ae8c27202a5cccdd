"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port, STARTTLS, optional AUTH.

Recipients at `refuse-*@` get a 550, at `later-*@` a 451; a message whose subject
contains "REJECT" gets a 554 after DATA. Everything accepted is kept in `received`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.send.smtp import SmtpTransport

USERNAME, PASSWORD = "mobilise", "relay-secret"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("refuse-"):
            return "550 5.1.1 No such user here"
        if address.startswith("later-"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        if "REJECT" in str(parsed["Subject"]):
            return "554 5.6.0 Message content rejected"
        tls = session.ssl is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, tls))
        return "250 2.0.0 Ok: queued"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    valid = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USERNAME, PASSWORD)
    return AuthResult(success=valid, handled=False)


class _FreePortController(Controller):
    """Binds port 0 and learns the real port before aiosmtpd's self-test connects."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))


def self_signed_certificate(folder: Path) -> Certificate:
    """A certificate for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    def transport(self, certificate: Certificate, now: dt.datetime) -> SmtpTransport:
        """Mobilise's SMTP transport to this server, STARTTLS required, at a fixed `now`."""
        return SmtpTransport(
            self.host,
            self.port,
            starttls="required",
            tls_context=certificate.client_context(),
            timeout=5,
            clock=lambda: now,
        )


@contextmanager
def running_smtp_server(
    certificate: Certificate | None = None, *, require_auth: bool = False
) -> Iterator[SmtpServer]:
    handler = RecordingHandler()
    options: dict[str, Any] = {}
    if certificate is not None:
        options["tls_context"] = certificate.server_context()
    if require_auth:
        options.update(authenticator=_authenticate, auth_required=True, auth_require_tls=True)
    controller = _FreePortController(handler, hostname="127.0.0.1", port=0, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()
