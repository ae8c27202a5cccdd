"""The audit log: who did what to whom, and when. Append-only.

Every right exercised (export, rectification, restriction, erasure, by staff, the CLI, the
supporter or the retention pass), every staff sign-in and every API key created or revoked
is one row. The target is a supporter id, never an address: the log outlives erasure and
must not undo it. This module only adds and reads; the database refuses UPDATE and DELETE
on the table (triggers, migration 0009).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, literal, select
from sqlalchemy.orm import Session

from engine.store.models import AuditEntry

# Who acts, as the `actor` column spells it.
CLI = "cli"
SUPPORTER = "supporter"
RETENTION = "retention"
# A refused sign-in or API key that names no known key (engine/store/apikeys.claimed).
UNKNOWN = "unknown"
# What a refusal is recorded as (who: the claimed key's holder, or UNKNOWN).
SIGN_IN_REFUSED = "sign-in-refused"
KEY_REFUSED = "api-key-refused"


def api_key(key_id: int) -> str:
    """An API client holding key `key_id`."""
    return f"apikey:{key_id}"


def staff(key_id: int) -> str:
    """A person signed in to the dashboard with key `key_id`."""
    return f"staff:{key_id}"


@dataclass(frozen=True)
class AuditRead:
    id: int
    at: datetime
    actor: str
    action: str
    supporter_id: int | None
    detail: dict[str, Any]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    now: datetime,
    supporter_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.execute(
        insert(AuditEntry).values(
            at=now, actor=actor, action=action, supporter_id=supporter_id, detail=detail or {}
        )
    )


def record_each(
    session: Session, *, actor: str, action: str, now: datetime, supporters: Select[Any]
) -> int:
    """One row per supporter id that `supporters` (a one-column SELECT) yields: INSERT …
    SELECT, for the retention pass's populations. Returns the rows written."""
    rows = supporters.add_columns(
        literal(now, AuditEntry.at.type),
        literal(actor),
        literal(action),
        literal({}, AuditEntry.detail.type),
    )
    done = session.execute(
        insert(AuditEntry).from_select(["supporter_id", "at", "actor", "action", "detail"], rows)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def entries(session: Session, *, supporter_id: int | None = None) -> list[AuditRead]:
    """The log in order, all of it or one supporter's."""
    query = select(
        AuditEntry.id,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.supporter_id,
        AuditEntry.detail,
    ).order_by(AuditEntry.id)
    if supporter_id is not None:
        query = query.where(AuditEntry.supporter_id == supporter_id)
    return [AuditRead(*row) for row in session.execute(query)]
