"""The transport `MOBILISE_TRANSPORT` names, built from the settings."""

from __future__ import annotations

from collections.abc import Sequence

from engine.config import Settings
from engine.errors import Invalid
from engine.send import files
from engine.send.files import FileTransport
from engine.send.sendgrid_api import SendGridTransport
from engine.send.smtp import SmtpTransport
from engine.send.transport import MemoryTransport, Transport


def from_settings(settings: Settings) -> Transport:
    if settings.transport == "sendgrid":
        if not settings.sendgrid_api_key:
            raise Invalid(
                "MOBILISE_TRANSPORT=sendgrid needs an API key",
                hint="set SENDGRID_API_KEY (a key with the Mail Send permission)",
            )
        return SendGridTransport.from_settings(settings)
    if settings.transport == "smtp":
        return SmtpTransport.from_settings(settings)
    if settings.transport == "memory":
        return MemoryTransport()
    return FileTransport(settings.outbox_dir)


def forget_copies(settings: Settings, message_ids: Sequence[int]) -> int:
    """Delete what the configured transport kept of these messages: the file transport's
    `.eml` files. Other transports keep nothing here (a provider's own logs are the
    operator's to handle: docs/privacy.md)."""
    if settings.transport != "file":
        return 0
    return files.forget(settings.outbox_dir, message_ids)
