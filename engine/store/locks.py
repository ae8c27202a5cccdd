"""One process at a time runs a given pass: a PostgreSQL advisory lock per pass name.

The lock is transaction-level (`pg_try_advisory_xact_lock`): it is held until the
caller's transaction ends, however it ends (commit, rollback, a dropped connection, a
killed process), so no path can leave it taken. It never waits: a pass that is already
running elsewhere is skipped, not queued behind it (engine/scheduler.py decides what a
skip means). Advisory locks are per database, so two campaigns' databases on one server
never block each other.

SQLite has a single writer and Mobilise runs its passes in one process there: the lock is
always granted and costs no statement.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def key(name: str) -> int:
    """A stable signed 64-bit key for `name` (advisory locks take a bigint)."""
    digest = hashlib.blake2b(f"mobilise pass {name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def try_hold(session: Session, name: str) -> bool:
    """Takes the lock of pass `name` until the session's transaction ends; False if
    another transaction holds it. Never waits."""
    if session.get_bind().dialect.name == "sqlite":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(key(name)))))
