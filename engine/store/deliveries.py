"""Provider events applied to messages: stored once, state moved forward only, suppressions.

SendGrid retries a batch for 24 hours and repeats events even after a 2xx, and events
arrive out of order. Each event is appended to `events` under its own key (duplicates are
dropped by the UNIQUE source key); only the new ones move message states, and only when
they rank above what the message already has (`engine.track` decides, this module writes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.config import Secret
from engine.rules.ids import is_key
from engine.store import counts, idsets
from engine.store.models import Event, OutboxMessage
from engine.store.pipeline import sql
from engine.store.suppressions import SuppressionCreate, add_many


class DeliveryEvent(Protocol):
    """What a provider event must tell (engine.track.sendgrid_events.ProviderEvent fits)."""

    @property
    def event(self) -> str: ...
    @property
    def dedup_key(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def email(self) -> str: ...
    @property
    def mobilise_message_id(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...


# The provider's own event type: its rules (`supersedes`, `suppression`) take that type, not
# only what this module reads of it.
E = TypeVar("E", bound=DeliveryEvent)


class Implied(Protocol):
    """A suppression an event implies (engine.track.sendgrid_events.Suppression fits)."""

    @property
    def reason(self) -> str: ...
    @property
    def lift_after(self) -> timedelta | None: ...  # None: for good


@dataclass
class Applied:
    stored: int = 0
    duplicates: int = 0
    unknown_messages: int = 0
    state_changes: int = 0
    suppressions: int = 0
    new_keys: list[str] = field(default_factory=list)


# Events are stored a chunk at a time, all in the caller's transaction: one INSERT of a
# 40,000-event batch would bind 280,000 parameters, past SQLite's limit (32,766) and
# PostgreSQL's (65,535), and SendGrid would retry the batch for a day. A state moves to
# the highest-ranked event whatever the order, so chunks change nothing else.
CHUNK = 1_000


def _message_id(event: DeliveryEvent) -> int | None:
    """Our message id from the event's custom args; None if it cannot be one (not ASCII
    digits, or beyond a key's range): the event is then one for an unknown message."""
    raw = event.mobilise_message_id
    if not raw or len(raw) > 19 or not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if is_key(value) else None


def apply(
    session: Session,
    events: Sequence[E],
    *,
    provider: str,
    now: datetime,
    supersedes: Callable[[E, str | None, datetime | None], bool],
    suppression: Callable[[E], Implied | None],
    secret: Secret,
) -> Applied:
    """Store a webhook batch. Does not commit: the caller answers 2xx only after commit."""
    result = Applied()
    for start in range(0, len(events), CHUNK):
        _apply_chunk(
            session,
            events[start : start + CHUNK],
            result,
            provider=provider,
            now=now,
            supersedes=supersedes,
            suppression=suppression,
            secret=secret,
        )
    result.new_keys.sort()
    return result


def _apply_chunk(
    session: Session,
    events: Sequence[E],
    result: Applied,
    *,
    provider: str,
    now: datetime,
    supersedes: Callable[[E, str | None, datetime | None], bool],
    suppression: Callable[[E], Implied | None],
    secret: Secret,
) -> None:
    ids = {i for i in map(_message_id, events) if i is not None}
    owners = (
        dict(
            session.execute(
                select(OutboxMessage.id, OutboxMessage.supporter_id).where(
                    idsets.among(session, OutboxMessage.id, ids)
                )
            ).all()
        )
        if ids
        else {}
    )
    rows = []
    seen: set[str] = set()
    for event in events:
        key = f"{provider}:{event.dedup_key}"
        if key in seen:
            continue
        seen.add(key)
        message_id = _message_id(event)
        # No address in the payload: the message id leads to the supporter.
        rows.append(
            {
                "kind": f"{provider}.{event.event}",
                "source_key": key,
                "occurred_at": event.occurred_at,
                "recorded_at": now,
                "supporter_id": owners.get(message_id) if message_id else None,
                "petition_id": None,
                "payload": {"message_id": message_id, "reason": event.reason},
            }
        )
    new_keys = _insert_new(session, rows)
    result.stored += len(new_keys)
    result.duplicates += len(events) - len(new_keys)
    result.new_keys += new_keys
    fresh = [e for e in events if f"{provider}:{e.dedup_key}" in new_keys]
    result.unknown_messages += sum(1 for e in fresh if _message_id(e) not in owners)
    result.state_changes += _move_states(session, fresh, owners, supersedes)
    # A temporary suppression runs from the event, not from when its webhook arrived.
    suppressions = [
        SuppressionCreate(
            reason=implied.reason,
            occurred_at=e.occurred_at,
            email=e.email,
            supporter_id=owners.get(_message_id(e) or -1),
            expires_at=None if implied.lift_after is None else e.occurred_at + implied.lift_after,
        )
        for e in fresh
        if (implied := suppression(e)) is not None
    ]
    result.suppressions += add_many(session, suppressions, now=now, secret=secret)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the events whose key is new; return those keys."""
    if session.get_bind().dialect.name == "postgresql":
        # The chunk as one array a column: psycopg parses the text of every statement it
        # sends, and a thousand rows' placeholders took it 0.35 s a chunk.
        columns = zip(*((r["kind"], r["source_key"], r["occurred_at"], r["supporter_id"],
                         r["payload"]["message_id"], r["payload"]["reason"]) for r in rows),
                      strict=True)  # fmt: skip
        values = dict(zip(_PG_ARRAYS, map(list, columns), strict=True))
        return set(session.scalars(_PG_INSERT, {**values, "now": rows[0]["recorded_at"]}))
    # SQLite: one statement for many parameter sets, which SQLAlchemy compiles once and
    # sends as multi-row INSERTs within SQLite's variable limit (a multi-row VALUES built
    # here is compiled again for every chunk: 0.5 s a thousand events).
    statement = (
        sqlite_insert(_EVENTS)
        .on_conflict_do_nothing(index_elements=["source_key"])
        .returning(_EVENTS.c.source_key)
    )
    return set(session.scalars(statement, rows))


def _move_states(
    session: Session,
    events: Sequence[E],
    owners: dict[int, int],
    supersedes: Callable[[E, str | None, datetime | None], bool],
) -> int:
    ids = [i for e in events if (i := _message_id(e)) in owners]
    if not ids:
        return 0
    current = {
        mid: (state, at)
        for mid, state, at in session.execute(
            select(OutboxMessage.id, OutboxMessage.delivery, OutboxMessage.delivery_at).where(
                idsets.among(session, OutboxMessage.id, ids)
            )
        )
    }
    changed: set[int] = set()
    for event in sorted(events, key=lambda e: e.occurred_at):
        mid = _message_id(event)
        if mid is not None and mid in current and supersedes(event, *current[mid]):
            current[mid] = (event.event, event.occurred_at)
            changed.add(mid)
    if changed:
        session.execute(
            _SET_DELIVERY,
            [{"mid": mid, "state": current[mid][0], "at": current[mid][1]} for mid in changed],
        )
        # Only states that moved: a repeated or outranked event changes no figure.
        counts.refresh(session, changed)
    return len(changed)


# Core, not ORM: an executemany UPDATE keyed by a bound id, one round trip for the batch.
_OUTBOX = cast(Table, OutboxMessage.__table__)
_EVENTS = cast(Table, Event.__table__)
_PG_ARRAYS = ("kinds", "keys", "occurred", "supporters", "messages", "reasons")
_PG_INSERT = sql(
    "INSERT INTO events"
    " (kind, source_key, occurred_at, recorded_at, supporter_id, petition_id, payload)"
    " SELECT e.kind, e.source_key, e.occurred_at, :now, e.supporter_id, NULL,"
    " json_build_object('message_id', e.message_id, 'reason', e.reason)"
    " FROM unnest(CAST(:kinds AS varchar[]), CAST(:keys AS varchar[]),"
    " CAST(:occurred AS timestamptz[]), CAST(:supporters AS bigint[]),"
    " CAST(:messages AS bigint[]), CAST(:reasons AS text[]))"
    " AS e(kind, source_key, occurred_at, supporter_id, message_id, reason)"
    " ON CONFLICT (source_key) DO NOTHING RETURNING source_key"
)
_SET_DELIVERY = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("mid"))
    .values(delivery=bindparam("state"), delivery_at=bindparam("at"))
)
