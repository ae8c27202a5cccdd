"""SMTP for organisations that run their own relay: one connection per batch.

Each message is its own envelope (MAIL, RCPT, DATA) so that a refusal is per recipient:
4xx replies are transient, 5xx permanent, 530/534/535 an authentication failure that stops
the batch. A dropped connection stops the batch too: the message in flight comes back
Transient (SMTP has no event feed to settle doubt, and RFC 5321 accepts the rare
duplicate over a loss), the rest `attempted=False`.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from engine.config import Settings
from engine.send import mime
from engine.send.transport import (
    Accepted,
    AuthFailed,
    OutgoingMessage,
    Permanent,
    SendResult,
    Transient,
)

_AUTH_CODES = (530, 534, 535)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SmtpTransport:
    host: str
    port: int = 25
    starttls: Literal["never", "opportunistic", "required"] = "opportunistic"
    tls_context: ssl.SSLContext | None = None
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    clock: Callable[[], datetime] = field(default=_utc_now)
    name: str = "smtp"
    batch_size: int = 200
    substitutes: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> SmtpTransport:
        return cls(settings.smtp_host, settings.smtp_port, **options)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        try:
            connection = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            reason = f"SMTP login refused ({exc.smtp_code}): stop sending and alert"
            return [AuthFailed(m.message_id, reason) for m in messages]
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"cannot open an SMTP session with {self.host}:{self.port}: {exc!r}"
            return [Transient(m.message_id, reason, attempted=False) for m in messages]
        now = self.clock()
        results: list[SendResult] = []
        try:
            for message in messages:
                result, usable = self._send_one(connection, message, now)
                results.append(result)
                if not usable:
                    break
        finally:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()
        if len(results) < len(messages):
            last = results[-1]
            rest = messages[len(results) :]
            if isinstance(last, AuthFailed):
                results += [AuthFailed(m.message_id, last.reason) for m in rest]
            else:
                reason = f"not offered: the session ended ({last.message_id} {last.state})"
                results += [Transient(m.message_id, reason, attempted=False) for m in rest]
        return results

    def _connect(self) -> smtplib.SMTP:
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.starttls != "never" and connection.has_extn("starttls"):
                connection.starttls(context=self.tls_context or ssl.create_default_context())
                connection.ehlo()
            elif self.starttls == "required":
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
            if self.username:
                connection.login(self.username, self.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def _send_one(
        self, connection: smtplib.SMTP, message: OutgoingMessage, now: datetime
    ) -> tuple[SendResult, bool]:
        """The message's result, and whether the session can carry the next one."""
        try:
            _dialogue(connection, message, mime.to_bytes(message, now=now))
        except smtplib.SMTPResponseException as exc:
            result = _classify(message.message_id, exc.smtp_code, _text(exc.smtp_error))
            if exc.smtp_code == 421 or isinstance(result, AuthFailed):
                return result, False  # the server is closing, or will refuse every message
            try:
                connection.rset()  # a clean transaction for the next message
            except (smtplib.SMTPException, OSError):
                return result, False
            return result, True
        except OSError as exc:  # includes SMTPServerDisconnected and socket timeouts
            return Transient(message.message_id, f"connection lost while sending: {exc!r}"), False
        return Accepted(message.message_id, mime.message_id_header(message)), True


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _dialogue(connection: smtplib.SMTP, message: OutgoingMessage, payload: bytes) -> None:
    """MAIL, RCPT, DATA for one message; a refusal resets the session for the next one."""
    options: list[str] = []
    if not (message.to.email.isascii() and message.sender.email.isascii()):
        if not connection.has_extn("smtputf8"):
            raise smtplib.SMTPResponseException(553, b"non-ASCII address, no SMTPUTF8 offered")
        options.append("SMTPUTF8")
    code, reply = connection.mail(message.sender.email, options)
    if code == 250:
        code, reply = connection.rcpt(message.to.email)
        if code in (250, 251):
            code, reply = connection.data(payload)  # raises SMTPDataError unless 354
            if code == 250:
                return
    raise smtplib.SMTPResponseException(code, reply)


def _classify(message_id: str, code: int, text: str) -> SendResult:
    reason = f"{code} {text}"
    if code in _AUTH_CODES:
        return AuthFailed(message_id, f"{reason}: stop sending and alert")
    if code == 421 or 400 <= code < 500:
        return Transient(message_id, reason)
    if 500 <= code < 600:
        return Permanent(message_id, reason)
    return Transient(message_id, reason)
