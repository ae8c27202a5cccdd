"""The append-only event log. Replays are harmless: `source_key` is unique."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import Event


@dataclass(frozen=True)
class EventIn:
    kind: str
    source_key: str
    occurred_at: datetime
    supporter_id: int | None = None
    petition_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert_(Event).on_conflict_do_nothing(index_elements=["source_key"])


def _row(event: EventIn, recorded_at: datetime | None) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "source_key": event.source_key,
        "occurred_at": event.occurred_at,
        "recorded_at": recorded_at or event.occurred_at.astimezone(UTC),
        "supporter_id": event.supporter_id,
        "petition_id": event.petition_id,
        "payload": event.payload,
    }


def append_many(
    session: Session, batch: Sequence[EventIn], *, recorded_at: datetime | None = None
) -> None:
    """Insert the events whose source key is not known yet (one executemany)."""
    if batch:
        session.connection().execute(_insert(session), [_row(e, recorded_at) for e in batch])


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
    event = EventIn(kind, source_key, occurred_at, supporter_id, petition_id, payload or {})
    statement = (
        _insert(session)
        .values(**_row(event, recorded_at))
        # The row, not the rowcount: on PostgreSQL the insert returns the id implicitly, and
        # psycopg then reports a rowcount of -1, new row or not.
        .returning(Event.id)
    )
    return session.connection().execute(statement).first() is not None
