"""The engine in virtual time (`mobilise simulate`, `mobilise demo`): what is due next,
emails "sent" without leaving, and the run's tallies. Never commits.

The simulator jumps from one due time to the next instead of ticking every hour: the next
instant is read with a handful of index seeks (`next_due`), and the emails due at an
instant are marked sent in one UPDATE (`mark_sent`) rather than rendered and handed to a
transport, which is what a run of 140,000 supporters could not afford.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.orm import Session

from engine.store import counts, idsets, milestones
from engine.store.journeys import Loaded
from engine.store.models import Enrolment, OutboxMessage, Petition


def _first_due(
    session: Session, loaded: Loaded, step_id: str, *, after: datetime | None, by: datetime | None
) -> datetime | None:
    """The earliest due time on one step of one version, in a range: one seek through
    `ix_enrolments_due` (its leading columns are fixed, so `ORDER BY due_at LIMIT 1` reads
    one index entry; a bare min() over the table would scan it)."""
    query = select(Enrolment.due_at).where(
        Enrolment.journey_version_id == loaded.version_id,
        Enrolment.state == "active",
        Enrolment.step_id == step_id,
        Enrolment.due_at.is_not(None),
    )
    if after is not None:
        query = query.where(Enrolment.due_at > after)
    if by is not None:
        query = query.where(Enrolment.due_at <= by)
    return session.scalar(query.order_by(Enrolment.due_at).limit(1))


def next_due(session: Session, running: Sequence[Loaded], *, after: datetime) -> datetime | None:
    """The earliest due time strictly after `after`, of an active enrolment or a queued email
    (one seek per version and step, one through `ix_outbox_status_due`). Enrolments due at
    or before `after` are left out: the pass at `after` has moved every one it could."""
    found = [
        first
        for loaded in running
        for step in loaded.journey.steps
        if (first := _first_due(session, loaded, step.id, after=after, by=None)) is not None
    ]
    queued = session.scalar(
        select(OutboxMessage.due_at)
        .where(OutboxMessage.status == "queued", OutboxMessage.due_at > after)
        .order_by(OutboxMessage.due_at)
        .limit(1)
    )
    if queued is not None:
        found.append(queued)
    return min(found, default=None)


@dataclass(frozen=True)
class Sent:
    """An email `mark_sent` marked sent: what the people it reaches can react to."""

    id: int
    journey_id: str
    supporter_id: int
    step_id: str
    variant: str | None
    template: str
    at: datetime


def mark_sent(
    session: Session, *, now: datetime, versions: Mapping[str, str] | None = None
) -> list[Sent]:
    """Mark every queued email due by `now` as sent at its due time, as a dispatcher on
    time would (the simulation has no suppressions, and quiet hours and the frequency cap
    were applied when the rows were queued): journeys then move on as they do once their
    emails are sent. `versions` (template -> compiled version) records the version each
    email would have been rendered from, so that its links resolve (`links.remember`) and
    clicks on them count as the click route's do. One UPDATE through
    `ix_outbox_status_due`, and one upsert of the steps' `sent`."""
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    values: dict[str, Any] = {"status": "sent", "sent_at": table.c.due_at}
    if versions:
        values["template_version"] = case(dict(versions), value=table.c.template, else_=None)
    sent = session.connection().execute(
        update(table)
        .where(table.c.status == "queued", table.c.due_at <= now)
        .values(values)
        .returning(
            table.c.id,
            table.c.journey_id,
            table.c.supporter_id,
            table.c.step_id,
            table.c.variant,
            table.c.template,
            table.c.due_at,
        )
    )
    found = [Sent(*row) for row in sent]
    counts.add_sent(session, [(e.journey_id, e.step_id, e.variant) for e in found])
    return found


def mark_delivered(session: Session, message_ids: Collection[int]) -> int:
    """The provider's word that these sent emails arrived, as of when they were sent: the
    state a webhook's `delivered` events leave (engine.store.deliveries), without storing
    the events, which the demo's 300,000 emails could not afford. Only emails the provider
    said nothing of yet: `delivered` outranks no other state. One UPDATE, then the summary
    rows through `counts.refresh`, as the webhook's moved states are counted. Returns the
    emails marked."""
    if not message_ids:
        return 0
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    moved = session.connection().execute(
        update(table)
        .where(
            idsets.among(session, table.c.id, message_ids),
            table.c.status == "sent",
            table.c.delivery.is_(None),
        )
        .values(delivery="delivered", delivery_at=table.c.sent_at)
        .returning(table.c.id)
    )
    found = list(moved.scalars())
    counts.refresh(session, found)
    return len(found)


def send_due(session: Session, *, now: datetime) -> int:
    """`mark_sent`, counted: what journey tests use for "the dispatcher sent what was
    due"."""
    return len(mark_sent(session, now=now))


def raise_count(session: Session, *, petition_id: int, to: int, now: datetime) -> list[int]:
    """Signatures counted elsewhere (paper, partner sites): the petition's count becomes at
    least `to`, and every milestone it passes is reached at `now`. Signatures recorded later
    are ranked after it. Returns the thresholds reached."""
    count = session.scalar(select(Petition.signature_count).where(Petition.id == petition_id))
    assert count is not None
    if count >= to:
        return []
    session.execute(update(Petition).where(Petition.id == petition_id).values(signature_count=to))
    return milestones.check(session, petition_id=petition_id, count=to, now=now)


@dataclass(frozen=True)
class EmailTally:
    step_id: str
    status: str
    reason: str | None
    # sent_at for sent emails, due_at for the others
    at: datetime
    count: int


def emails(session: Session, journey_id: str) -> list[EmailTally]:
    """The journey's outbox grouped by step, status, reason and instant (a run has few
    distinct instants, so the groups are few whatever the population)."""
    at = func.coalesce(OutboxMessage.sent_at, OutboxMessage.due_at)
    rows = session.execute(
        select(
            OutboxMessage.step_id,
            OutboxMessage.status,
            OutboxMessage.reason,
            at,
            func.count(),
        )
        .where(OutboxMessage.journey_id == journey_id)
        .group_by(OutboxMessage.step_id, OutboxMessage.status, OutboxMessage.reason, at)
    ).all()
    return [EmailTally(*row) for row in rows]


@dataclass(frozen=True)
class EnrolmentTally:
    version_id: int
    state: str
    step_id: str | None
    exit_reason: str | None
    count: int
    first_due: datetime | None
    last_due: datetime | None


def enrolments(session: Session, journey_id: str) -> list[EnrolmentTally]:
    """The journey's enrolments grouped by version, state, step and exit reason, with the
    range of their due times."""
    rows = session.execute(
        select(
            Enrolment.journey_version_id,
            Enrolment.state,
            Enrolment.step_id,
            Enrolment.exit_reason,
            func.count(),
            func.min(Enrolment.due_at),
            func.max(Enrolment.due_at),
        )
        .where(Enrolment.journey_id == journey_id)
        .group_by(
            Enrolment.journey_version_id,
            Enrolment.state,
            Enrolment.step_id,
            Enrolment.exit_reason,
        )
    ).all()
    return [EnrolmentTally(*row) for row in rows]
