"""Gifts, one-off and monthly, de-duplicated by the payment platform's external id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, ScalarSelect, bindparam, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from engine.store.models import Donation
from engine.store.types import UTCDateTime


@dataclass(frozen=True)
class DonationRow:
    email: str  # normalised
    amount_cents: int
    currency: str
    donated_at: datetime
    frequency: Literal["one-off", "monthly"]
    external_id: str


# Unknown emails are skipped (the caller reports them); a replayed external id is a no-op.
_INSERT = text(
    "INSERT INTO donations (supporter_id, amount_cents, currency, donated_at, frequency,"
    " external_id, recorded_at) "
    "SELECT s.id, :amount_cents, :currency, :donated_at, :frequency, :external_id, :now "
    "FROM supporters s WHERE s.email = :email "
    "ON CONFLICT (external_id) DO NOTHING"
).bindparams(
    # Typed binds: SQLite compares datetimes as text, so they must be stored in one format.
    bindparam("donated_at", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
)


def record(session: Session, rows: Sequence[DonationRow], *, now: datetime) -> int:
    """Insert the gifts of known supporters (one executemany); returns how many were new."""
    if not rows:
        return 0
    params = [
        {
            "email": r.email,
            "amount_cents": r.amount_cents,
            "currency": r.currency,
            "donated_at": r.donated_at,
            "frequency": r.frequency,
            "external_id": r.external_id,
            "now": now,
        }
        for r in rows
    ]
    result = session.connection().execute(_INSERT, params)
    return int(result.rowcount)


def latest(
    supporter_id: ColumnElement[int] | InstrumentedAttribute[int],
    now: datetime,
    column: Literal["id", "amount_cents", "frequency"],
) -> ScalarSelect[Any]:
    """A column of the supporter's last gift at `now` (NULL if none), correlated to the
    outer statement's `supporter_id`: one probe of ix_donations_supporter per supporter.

    One-off gifts and monthly payments alike; on equal times the last recorded wins. The
    pure twin is engine.rules.conditions.last_gift: `last_gift` conditions and the amounts
    templates show must agree. Aliased, so that an outer statement over donations does
    not swallow this one's FROM by correlation."""
    gift = aliased(Donation)
    return (
        select(getattr(gift, column))
        .where(gift.supporter_id == supporter_id, gift.donated_at <= now)
        .order_by(gift.donated_at.desc(), gift.id.desc())
        .limit(1)
        .scalar_subquery()
    )
