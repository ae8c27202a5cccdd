"""Reads a funnel adds to the summary rows (engine/store/counts.py): where people are now,
signatures per day, the gifts no email led to, and a journey's figures per segment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.orm import Session

from engine.rules.conditions import Condition
from engine.store import monthly_gifts
from engine.store import segments as segment_sql
from engine.store.models import (
    Donation,
    Enrolment,
    JourneyVersion,
    MessageCounts,
    OutboxMessage,
    Petition,
    SignatureDay,
)
from engine.store.step_figures import FIGURES, StepFigures


def people_at_steps(session: Session, journey_id: str) -> dict[str, int]:
    """Active enrolments per step of every version of the journey, read along
    ix_enrolments_due (version, state, step): one range of it per version, in its order.
    (That index has no journey id: filtering on `Enrolment.journey_id` read every
    enrolment.) The cost is the journey's active enrolments, not all it has had. The
    versions are named, not joined: a join let PostgreSQL walk the whole index on a small
    table."""
    versions = session.scalars(
        select(JourneyVersion.id).where(JourneyVersion.journey_id == journey_id)
    ).all()
    rows = session.execute(
        select(Enrolment.step_id, func.count())
        .where(Enrolment.journey_version_id.in_(versions), Enrolment.state == "active")
        .group_by(Enrolment.journey_version_id, Enrolment.step_id)
    ).all()
    found: Counter[str] = Counter()
    for step, n in rows:
        if step is not None:
            found[step] += int(n)
    return dict(found)


def signatures_by_day(session: Session, petition_slug: str) -> list[tuple[date, int]]:
    """(UTC day, signatures signed that day), oldest first; paper signatures count. From
    the summary rows `signature_days`: one row a day, whatever the signatures."""
    rows = session.execute(
        select(SignatureDay.day, SignatureDay.signatures)
        .join(Petition, Petition.id == SignatureDay.petition_id)
        .where(Petition.slug == petition_slug)
        .order_by(SignatureDay.day)
    ).all()
    return [(d, int(n)) for d, n in rows]


def unattributed_gifts(session: Session) -> tuple[int, int, int]:
    """(gifts, one-off cents, monthly cents) of the gifts no email is credited with, not
    refunded (a monthly gift counts once, at its first payment, and a cancelled one leaves
    the monthly amount, as in engine.store.step_figures): they count in totals."""
    counted = (Donation.message_id.is_(None), Donation.refunded_at.is_(None))
    cents = func.coalesce(func.sum(Donation.amount_cents), 0)
    gifts, one_off, monthly = session.execute(
        select(
            func.count(),
            select(cents).where(*counted, Donation.frequency == "one-off").scalar_subquery(),
            select(cents)
            .where(
                *counted,
                monthly_gifts.in_force(Donation),
                monthly_gifts.first_payment(Donation, lambda e: e.message_id.is_(None)),
            )
            .scalar_subquery(),
        ).where(*counted)
    ).one()
    return int(gifts), int(one_off), int(monthly)


def by_segment(
    session: Session,
    journey_id: str,
    wanted: Mapping[str, Condition],
    *,
    now: datetime,
    segments: Mapping[str, Condition],
) -> dict[str, StepFigures]:
    """The figures of the journey's sent emails (every step and variant) to the people each
    `wanted` segment holds at `now`, summed as the summary rows sum them: sent, delivered,
    bounced, unsubscribed, clickers and donors (emails with a click or a gift), clicks,
    gifts and amounts. Segments overlap: their rows do not add up to the journey's.

    One statement: the journey's emails summed per person once (what each email produced
    is its `message_counts` row), then, for each segment, the people its condition selects
    (engine.store.segments, the SQL the journeys select with)."""
    if not wanted:
        return {}
    produced = MessageCounts
    clicks = func.coalesce(produced.clicks, 0)
    gifts = func.coalesce(produced.gifts, 0)
    per_email = {
        "sent": literal(1),
        "delivered": func.coalesce(produced.delivered, 0),
        "bounced": func.coalesce(produced.bounced, 0),
        "unsubscribed": func.coalesce(produced.unsubscribed, 0),
        "clickers": case((clicks > 0, 1), else_=0),
        "clicks": clicks,
        "donors": case((gifts > 0, 1), else_=0),
        "gifts": gifts,
        "one_off_cents": func.coalesce(produced.one_off_cents, 0),
        "monthly_cents": func.coalesce(produced.monthly_cents, 0),
    }
    people = (
        select(
            OutboxMessage.supporter_id.label("supporter_id"),
            *[func.sum(per_email[name]).label(name) for name in FIGURES],
        )
        .outerjoin(produced, produced.message_id == OutboxMessage.id)
        .where(
            OutboxMessage.journey_id == journey_id,
            OutboxMessage.status == "sent",
            OutboxMessage.supporter_id.is_not(None),
        )
        .group_by(OutboxMessage.supporter_id)
        .cte("journey_people")
    )
    ctx = segment_sql.Context(supporter_id=people.c.supporter_id, now=now, segments=segments)
    parts = [
        select(
            literal(name).label("segment"),
            *[func.coalesce(func.sum(people.c[f]), 0).label(f) for f in FIGURES],
        ).where(segment_sql.where(condition, ctx))
        for name, condition in wanted.items()
    ]
    rows = session.execute(union_all(*parts)).all()
    return {name: StepFigures(*(int(v) for v in values)) for name, *values in rows}
