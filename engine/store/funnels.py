"""Reads a funnel adds to the summary rows (engine/store/counts.py): where people are now,
signatures per day, and the gifts no email led to."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from engine.store.models import Donation, Enrolment, Petition, Signature


def people_at_steps(session: Session, journey_id: str) -> dict[str, int]:
    """Active enrolments per step of every version of the journey (read along
    ix_enrolments_due, whose leading columns are version, state and step)."""
    rows = session.execute(
        select(Enrolment.step_id, func.count())
        .where(Enrolment.journey_id == journey_id, Enrolment.state == "active")
        .group_by(Enrolment.step_id)
    ).all()
    return {step: int(n) for step, n in rows if step is not None}


def _day(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores UTC text: its date part


def signatures_by_day(session: Session, petition_slug: str) -> list[tuple[date, int]]:
    """(UTC day, signatures signed that day), oldest first; paper signatures count."""
    day = _day(session, Signature.signed_at)
    rows = session.execute(
        select(day, func.count())
        .join(Petition, Petition.id == Signature.petition_id)
        .where(Petition.slug == petition_slug)
        .group_by(day)
        .order_by(day)
    ).all()
    return [(d if isinstance(d, date) else date.fromisoformat(str(d)), int(n)) for d, n in rows]


def unattributed_gifts(session: Session) -> tuple[int, int, int]:
    """(gifts, one-off cents, monthly cents) of the gifts no email is credited with, not
    refunded (a cancelled monthly gift leaves the monthly amount): they count in totals."""
    counted = (Donation.message_id.is_(None), Donation.refunded_at.is_(None))
    cents = func.coalesce(func.sum(Donation.amount_cents), 0)
    gifts, one_off, monthly = session.execute(
        select(
            func.count(),
            select(cents).where(*counted, Donation.frequency == "one-off").scalar_subquery(),
            select(cents)
            .where(*counted, Donation.frequency == "monthly", Donation.cancelled_at.is_(None))
            .scalar_subquery(),
        ).where(*counted)
    ).one()
    return int(gifts), int(one_off), int(monthly)
