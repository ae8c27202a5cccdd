"""The transport `MOBILISE_TRANSPORT` names, built from the settings."""

from __future__ import annotations

from engine.config import Settings
from engine.errors import Invalid
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
