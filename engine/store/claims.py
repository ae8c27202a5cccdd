"""Claims on outbox rows: the dispatcher's leases, and the states a send moves through.

    queued ──claim──► sending ──► sent | failed | suppressed | queued (retry, deferral)
       │                 └──worker died (lease over)──► queued, or ambiguous (SendGrid)
       └──far overdue──► held ──approve──► queued
    ambiguous ──provider event seen──► sent;  ──nothing after the wait──► queued

A claim is committed before the provider call and its outcome in a second transaction
after it, so that a crash at any point leaves a row either `sending` (recovered once its
lease is over) or settled. Nothing here commits: the dispatcher pass owns transactions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.store import counts
from engine.store.idsets import among
from engine.store.models import OutboxMessage

# Reasons are stored in a VARCHAR(80): provider texts are cut to fit.
REASON_LENGTH = 80
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Claimed(NamedTuple):
    """A row this worker holds, with what the send needs of it.

    Named tuples, not frozen dataclasses: built 1,000 at a time from result rows, where a
    frozen dataclass's __init__ cost 30 µs a row (measured)."""

    id: int
    enrolment_id: int
    step_id: str
    supporter_id: int
    journey_id: str
    journey_version_id: int
    template: str
    variant: str | None
    transactional: bool
    attempts: int  # this claim included


class Outcome(NamedTuple):
    """How a claimed row leaves `sending`: one executemany writes a batch of these."""

    id: int
    status: str  # sent | failed | suppressed | queued | ambiguous
    reason: str | None = None
    due_at: datetime | None = None  # queued again: when
    provider_id: str | None = None
    template_version: str | None = None
    sent_at: datetime | None = None
    # -1 when the claim's attempt did not reach the provider (deferred, never offered).
    attempts_delta: int = 0


def _table() -> Table:
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    return table


def claim(session: Session, *, worker_id: str, now: datetime, limit: int) -> list[Claimed]:
    """Take up to `limit` due `queued` rows, oldest due first, as this worker's lease."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "queued", OutboxMessage.due_at <= now)
        .order_by(OutboxMessage.due_at)
        .limit(limit)
    )
    table = _table()
    statement = update(table)
    if session.get_bind().dialect.name == "postgresql":
        # FOR UPDATE SKIP LOCKED: concurrent workers each lock a disjoint set of rows
        # instead of queueing behind one another's locks, and a row another worker is
        # claiming right now is simply not seen. In a CTE joined by UPDATE … FROM, not
        # `id IN (subquery)`: the planner may run such a subquery more than once (a
        # semi-join rescan), each run skipping what the last one locked, and so claim
        # more than `limit` rows. The outer UPDATE re-checks `status`, so a row claimed
        # and committed in between is not taken twice.
        locked = due.with_for_update(skip_locked=True).cte("due")
        statement = statement.where(table.c.id == locked.c.id)
    else:
        # SQLite has a single writer (BEGIN IMMEDIATE, engine/store/db.py): a plain
        # subquery is enough.
        statement = statement.where(table.c.id.in_(due.scalar_subquery()))
    statement = (
        statement.where(table.c.status == "queued")
        .values(
            status="sending",
            claimed_by=worker_id,
            claimed_at=now,
            attempts=table.c.attempts + 1,
        )
        .returning(
            table.c.id,
            table.c.enrolment_id,
            table.c.step_id,
            table.c.supporter_id,
            table.c.journey_id,
            table.c.journey_version_id,
            table.c.template,
            table.c.variant,
            table.c.transactional,
            table.c.attempts,
        )
    )
    rows = session.connection().execute(statement).all()
    claimed = [Claimed(*row) for row in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


def record(
    session: Session,
    outcomes: Sequence[Outcome],
    *,
    worker_id: str,
    counted_later: list[Sequence[str | None]] | None = None,
) -> int:
    """Write the outcomes of this worker's claims; returns the rows changed.

    The rows moved to `sent` are counted in the steps' summary rows at once, or, given
    `counted_later` (from `counted_at_the_end`), at the end of the caller's transaction.

    Outcomes that differ only by row id share one `UPDATE … WHERE id = ANY(:ids)`
    (engine.store.idsets): a batch accepted by SendGrid is one statement per request (one
    provider id each), where an executemany would cost a round trip of parameters per row.
    Only rows still `sending` under this worker's name change: a claim recovered by
    another worker after its lease ran out is theirs now."""
    groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
    for o in outcomes:
        key = (
            o.status,
            cut(o.reason),
            o.due_at,
            o.provider_id,
            o.template_version,
            o.sent_at,
            o.attempts_delta,
        )
        groups[key].append(o.id)
    table = _table()
    changed = 0
    moved: list[Sequence[str | None]] = []
    for (status, reason, due_at, provider, version, sent_at, delta), ids in groups.items():
        values: dict[str, object] = {
            "status": status,
            "reason": reason,
            "sent_at": sent_at,
            # Ambiguous rows keep their claim: its time is when the doubt began.
            "claimed_by": worker_id if status == "ambiguous" else None,
        }
        if due_at is not None:
            values["due_at"] = due_at
        if provider is not None:
            values["provider_id"] = provider
        if version is not None:
            values["template_version"] = version
        if delta:
            values["attempts"] = table.c.attempts + delta
        statement = (
            update(table)
            .where(
                among(session, table.c.id, ids),
                table.c.status == "sending",
                table.c.claimed_by == worker_id,
            )
            .values(values)
            .execution_options(preserve_rowcount=True)
        )
        if status == "sent":
            # The rows this UPDATE moved, counted in the same transaction: the step's
            # `sent` is never ahead of or behind the outbox.
            found = session.connection().execute(statement.returning(*counts.MOVED)).all()
            moved += found
            changed += len(found)
        else:
            changed += max(session.connection().execute(statement).rowcount, 0)
    if counted_later is None:
        # Once for all groups: the summary rows are locked in one order (counts.add).
        counts.add_sent(session, moved)
    else:
        counted_later += moved
    return changed


@contextmanager
def counted_at_the_end(session: Session) -> Iterator[list[Sequence[str | None]]]:
    """Where `record` puts the sent rows it moves, counted when the block ends without an
    error: last in the transaction, so that a step's summary row stays locked from there
    to the commit only. Two dispatch workers count the same few rows (one per step); a
    count made early in a batch's transaction made the other worker wait for the rest of
    it (3.5 s of waits in the PostgreSQL campaign bench)."""
    moved: list[Sequence[str | None]] = []
    yield moved
    counts.add_sent(session, moved)


def cut(reason: str | None) -> str | None:
    if reason is None or len(reason) <= REASON_LENGTH:
        return reason
    return reason[: REASON_LENGTH - 1] + "…"


def recover_stale(session: Session, *, now: datetime, lease: timedelta, idempotent: bool) -> int:
    """Rows left `sending` by a worker that died (its lease is over).

    With an idempotent transport (files named by message id) they are queued again: a
    second delivery of the same message writes nothing. Otherwise (SendGrid) the worker
    may have sent them before dying, so they become `ambiguous` and wait for the
    provider's events like a timed-out request (engine.send.ambiguity)."""
    table = _table()
    target = "queued" if idempotent else "ambiguous"
    statement = (
        update(table)
        .where(table.c.status == "sending", table.c.claimed_at < now - lease)
        .values(status=target, reason="stale-claim")
        .execution_options(preserve_rowcount=True)
    )
    if idempotent:
        statement = statement.values(claimed_by=None)
    return max(session.connection().execute(statement).rowcount, 0)


def ambiguous(session: Session, *, limit: int = 100_000) -> list[tuple[int, datetime, bool]]:
    """(id, ambiguous since, a provider event was seen) of every ambiguous row."""
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.claimed_at, OutboxMessage.delivery.is_not(None))
        .where(OutboxMessage.status == "ambiguous")
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    return [(row[0], row[1] or EPOCH, bool(row[2])) for row in rows]


def settle_ambiguous(
    session: Session, *, confirmed: Iterable[int], resend: Iterable[int], now: datetime
) -> None:
    """Confirmed ids become sent; the ones the provider never reported are queued again."""
    table = _table()
    connection = session.connection()
    sent = list(confirmed)
    if sent:
        moved = connection.execute(
            update(table)
            .where(among(session, table.c.id, sent), table.c.status == "ambiguous")
            .values(
                status="sent",
                reason=None,
                claimed_by=None,
                sent_at=func.coalesce(table.c.delivery_at, table.c.claimed_at),
            )
            .returning(*counts.MOVED)
        )
        counts.add_sent(session, moved)
    again = [{"oid": i} for i in resend]
    if again:
        connection.execute(
            update(table)
            .where(table.c.id == bindparam("oid"), table.c.status == "ambiguous")
            .values(status="queued", reason="ambiguous-resend", claimed_by=None, due_at=now),
            again,
        )


def hold_overdue(session: Session, *, now: datetime, overdue_after: timedelta) -> int:
    """Queued rows late by more than `overdue_after` (downtime, a restore) wait for a
    manager: an update about a milestone reached last week should not go out unread."""
    table = _table()
    statement = (
        update(table)
        .where(table.c.status == "queued", table.c.due_at < now - overdue_after)
        .values(status="held", reason="overdue")
        .execution_options(preserve_rowcount=True)
    )
    return max(session.connection().execute(statement).rowcount, 0)


def approve(
    session: Session, *, now: datetime, journey_id: str | None = None, step_id: str | None = None
) -> int:
    """Queue held rows again, due now; optionally one journey or step only."""
    table = _table()
    statement = update(table).where(table.c.status == "held")
    if journey_id is not None:
        statement = statement.where(table.c.journey_id == journey_id)
    if step_id is not None:
        statement = statement.where(table.c.step_id == step_id)
    statement = statement.values(status="queued", reason="approved", due_at=now).execution_options(
        preserve_rowcount=True
    )
    return max(session.connection().execute(statement).rowcount, 0)


def summary(session: Session) -> list[tuple[str, str, str, int]]:
    """(journey, step, status, count) over the whole outbox."""
    rows = session.execute(
        select(OutboxMessage.journey_id, OutboxMessage.step_id, OutboxMessage.status, func.count())
        .group_by(OutboxMessage.journey_id, OutboxMessage.step_id, OutboxMessage.status)
        .order_by(OutboxMessage.journey_id, OutboxMessage.step_id, OutboxMessage.status)
    ).all()
    return [(j, s, st, n) for j, s, st, n in rows]


def sent_since(session: Session, since: datetime) -> int:
    """Emails sent after `since`: what the hourly throttle has already used."""
    count = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == "sent", OutboxMessage.sent_at > since)
    )
    return int(count or 0)
