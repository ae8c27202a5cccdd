"""The append-only event log. Replays are harmless: `source_key` is unique."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import Event


def append(
    session: Session,
    *,
    kind: str,
    source_key: str,
    occurred_at: datetime,
    supporter_id: int | None = None,
    petition_id: int | None = None,
    payload: dict[str, Any] | None = None,
    recorded_at: datetime | None = None,
) -> bool:
    """Insert one event unless its source key is known; True when it was new."""
    values = {
        "kind": kind,
        "source_key": source_key,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at or occurred_at.astimezone(UTC),
        "supporter_id": supporter_id,
        "petition_id": petition_id,
        "payload": payload or {},
    }
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_(Event)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source_key"])
        # The row, not the rowcount: on PostgreSQL the insert returns the id implicitly, and
        # psycopg then reports a rowcount of -1, new row or not.
        .returning(Event.id)
    )
    return session.connection().execute(statement).first() is not None
