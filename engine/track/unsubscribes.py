"""Unsubscribes in: a signed unsubscribe token read, its supporter suppressed.

Reading a token changes nothing: the page a GET shows asks before acting, since mail
scanners fetch every link in an email. Only `confirm` (the POST: RFC 8058 one-click or
the confirmation form) suppresses the address, before the next dispatch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from engine.config import Secret
from engine.render import tokens
from engine.store import suppressions


def read(secret: Secret, token: str) -> int | None:
    """The message the token was sent in; None for a malformed or forged one."""
    return tokens.read_unsubscribe_token(secret, token)


def confirm(session: Session, message_id: int, *, now: datetime, secret: Secret) -> bool:
    """Unsubscribe the supporter the message went to; False if no such message. Idempotent."""
    return suppressions.unsubscribe_message(session, message_id, now=now, secret=secret)
