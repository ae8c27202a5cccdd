"""API keys for staff: created with a role, shown once, stored only as a SHA-256 hash.

A key is 32 random bytes, so an unsalted hash is enough: nobody can guess one to look up.
The same key signs a person in to the dashboard, which checks the key on every request
so that revoking it ends the sessions opened with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.rules.staff import Role
from engine.store.models import ApiKey

PREFIX = "mob_"
# What is kept of a key besides its hash: `mob_` and 8 of its 43 random characters (48 of
# 256 bits), enough to name the key a refused one claims to be, far from enough to guess it.
PREFIX_LENGTH = 12


@dataclass(frozen=True)
class Staff:
    key_id: int
    role: Role
    label: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(session: Session, *, role: Role, label: str, now: datetime) -> tuple[int, str]:
    """A new key: its id and the key itself, which is never stored and cannot be shown again."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        key_hash=_hash(key),
        key_prefix=key[:PREFIX_LENGTH],
        role=role.name,
        label=label,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id, key


def _active(session: Session, *conditions: object) -> Staff | None:
    row = session.execute(
        select(ApiKey.id, ApiKey.role, ApiKey.label).where(
            ApiKey.revoked_at.is_(None),
            *conditions,  # type: ignore[arg-type]
        )
    ).one_or_none()
    return None if row is None else Staff(row.id, Role[row.role], row.label)


def authenticate(session: Session, key: str) -> Staff | None:
    """The staff member holding `key`, or None for an unknown or revoked key."""
    if not key.startswith(PREFIX):
        return None
    return _active(session, ApiKey.key_hash == _hash(key))


def claimed(session: Session, key: str) -> int | None:
    """The id of the key, revoked or not, whose first characters `key` carries: the key a
    refused one claims to be (mistyped, revoked, or part of it known); None for none."""
    if not key.startswith(PREFIX) or len(key) < PREFIX_LENGTH:
        return None
    found = session.scalars(
        select(ApiKey.id).where(ApiKey.key_prefix == key[:PREFIX_LENGTH]).order_by(ApiKey.id)
    ).first()
    return found


def active(session: Session, key_id: int) -> Staff | None:
    """The key behind a signed-in session, while it is not revoked."""
    return _active(session, ApiKey.id == key_id)


def revoke(session: Session, key_id: int, *, now: datetime) -> bool:
    """Revoke a key; False if no such active key. Revoking twice changes nothing."""
    done = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def listing(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))
