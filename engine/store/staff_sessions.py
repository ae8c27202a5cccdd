"""Dashboard sign-ins: one row each, deleted on signing out, so that a cookie kept after
signing out (or copied before) opens nothing. The row holds a hash of the session token,
never the token; a session ends with its key's revocation, or `lifetime` after it began.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.rules.staff import Role
from engine.store.apikeys import Staff
from engine.store.models import ApiKey, StaffSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, staff: Staff, *, now: datetime, lifetime: timedelta) -> str:
    """A new session for `staff`: its token, which only the cookie keeps. Sessions over
    `lifetime` are deleted on the way (there are few: one a sign-in)."""
    session.execute(
        delete(StaffSession)
        .where(StaffSession.created_at <= now - lifetime)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_hash(token), key_id=staff.key_id, created_at=now))
    session.flush()
    return token


def holder(session: Session, token: str, *, now: datetime, lifetime: timedelta) -> Staff | None:
    """Who signed in with this session, while it is open and their key not revoked."""
    row = session.execute(
        select(ApiKey.id, ApiKey.role, ApiKey.label)
        .join(StaffSession, StaffSession.key_id == ApiKey.id)
        .where(
            StaffSession.token_hash == _hash(token),
            StaffSession.created_at > now - lifetime,
            ApiKey.revoked_at.is_(None),
        )
    ).one_or_none()
    return None if row is None else Staff(row.id, Role[row.role], row.label)


def close(session: Session, token: str) -> None:
    """Sign out: the session's cookie opens nothing from now on, here or in any process."""
    session.execute(
        delete(StaffSession)
        .where(StaffSession.token_hash == _hash(token))
        .execution_options(synchronize_session=False)
    )
