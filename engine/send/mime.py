"""An `OutgoingMessage` as an RFC 5322 message: multipart/alternative, text then HTML.

Shared by the file and SMTP transports so that an `.eml` in the outbox is byte for byte
what an SMTP server would receive.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from engine.send.transport import Address, OutgoingMessage


def _address(address: Address) -> str:
    return formataddr((address.name, address.email)) if address.name else address.email


def message_id_header(message: OutgoingMessage) -> str:
    """A stable Message-ID, so that a resent file or SMTP retry is recognisably the same."""
    domain = message.sender.email.rpartition("@")[2] or "mobilise.invalid"
    return f"<{message.message_id}@{domain}>"


def build(message: OutgoingMessage, *, now: datetime) -> EmailMessage:
    subject, html, text = message.rendered()
    email = EmailMessage(policy=SMTP)
    email["From"] = _address(message.sender)
    email["To"] = _address(message.to)
    if message.reply_to is not None:
        email["Reply-To"] = _address(message.reply_to)
    email["Subject"] = subject
    email["Date"] = format_datetime(message.send_at or now)
    email["Message-ID"] = message_id_header(message)
    for name, value in message.all_headers.items():
        email[name] = value
    if message.categories:
        email["X-Mobilise-Categories"] = ", ".join(message.categories)
    email.set_content(text or " ", cte="quoted-printable")
    email.add_alternative(html or "<p></p>", subtype="html", cte="quoted-printable")
    return email


def to_bytes(message: OutgoingMessage, *, now: datetime) -> bytes:
    return build(message, now=now).as_bytes()
