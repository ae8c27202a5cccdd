"""Gifts, one-off and monthly, de-duplicated by the payment platform's external id.

A gift is tied to the email that led to it when it is recorded (attribution): to the
message its reference names (`attributed_by = 'reference'`), otherwise to the
supporter's last click that is not automated within the attribution window before the
gift (`'last_click'`), otherwise to none (it still counts in totals).

Refunds and cancelled monthly gifts keep the row and date the change. From the moment
of its refund a gift no longer counts, anywhere (`counts`): not as a gift, not as the
last gift (the donor branch, the amounts asked), not for a journey's goal; from the
moment of its cancellation a monthly gift no longer makes its giver a monthly donor.
What happened before stays as it was: a supporter who left a journey as converted
stays out of it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from engine.store import counts as summaries
from engine.store import monthly_gifts
from engine.store.models import Donation, Supporter
from engine.store.types import Moment, UTCDateTime

REFERENCE = "reference"
LAST_CLICK = "last_click"
DEFAULT_WINDOW = timedelta(days=7)
# Rows per statement group: the batch's external ids are bound as one IN list.
CHUNK = 1_000


@dataclass(frozen=True)
class DonationRow:
    email: str  # normalised
    amount_cents: int
    currency: str
    donated_at: datetime
    frequency: Literal["one-off", "monthly"]
    external_id: str
    # The message the gift's attribution reference names (already verified), if any.
    message_id: int | None = None
    # The platform's id of the monthly gift this payment is of, if it says.
    subscription_id: str | None = None


@dataclass
class Recorded:
    """What recording a batch of gifts did."""

    imported: int = 0
    duplicates: int = 0
    # Gifts from addresses nobody had signed with: a supporter without consents each.
    new_supporters: int = 0
    by_reference: int = 0
    by_last_click: int = 0

    def add(self, other: Recorded) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def counts(gift: Any, now: Moment) -> ColumnElement[bool]:
    """The gift (the Donation entity or an alias) counts at `now`: given, not refunded."""
    return and_(gift.donated_at <= now, or_(gift.refunded_at.is_(None), gift.refunded_at > now))


def monthly_in_force(gift: Any, now: Moment) -> ColumnElement[bool]:
    """A monthly gift not cancelled by `now`."""
    return and_(
        gift.frequency == "monthly", or_(gift.cancelled_at.is_(None), gift.cancelled_at > now)
    )


# A supporter for each unknown address: the gift is kept, its giver has no consents (so
# receives no campaign email) and enters journeys only through a `donated` trigger.
_NEW_SUPPORTER = text(
    "INSERT INTO supporters (email, locale, created_at) VALUES (:email, 'fr', :now) "
    "ON CONFLICT (email) DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))

# A replayed external id is a no-op. Attribution in the same statement: the message the
# reference names if it exists, else the giver's last click that is not automated within
# the window, found by one probe of ix_clicks_supporter (supporter_id, clicked_at).
# (SQLite needs the WHERE before ON CONFLICT: without it, the upsert's ON would parse as
# the join's.)
_INSERT = text(
    "INSERT INTO donations (supporter_id, amount_cents, currency, donated_at, frequency,"
    " external_id, subscription_id, recorded_at, message_id, attributed_by) "
    "SELECT s.id, :amount_cents, :currency, :donated_at, :frequency, :external_id,"
    " :subscription_id, :now, COALESCE(r.id, c.message_id),"
    f" CASE WHEN r.id IS NOT NULL THEN '{REFERENCE}'"
    f" WHEN c.message_id IS NOT NULL THEN '{LAST_CLICK}' END "
    "FROM supporters s "
    "LEFT JOIN outbox r ON r.id = :message_id "
    "LEFT JOIN clicks c ON c.id = ("
    " SELECT k.id FROM clicks k WHERE k.supporter_id = s.id AND NOT k.automated"
    " AND k.clicked_at > :since AND k.clicked_at <= :donated_at"
    " ORDER BY k.clicked_at DESC, k.id DESC LIMIT 1) "
    "WHERE s.email = :email "
    "ON CONFLICT (external_id) DO NOTHING"
).bindparams(
    # Typed binds: SQLite compares datetimes as text, so they must be stored in one format.
    bindparam("donated_at", type_=UTCDateTime()),
    bindparam("since", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
)


def record(
    session: Session,
    rows: Sequence[DonationRow],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> Recorded:
    """Record a batch of gifts (external ids unique within it), attributed as they go in.

    Set-based: one executemany creates the unknown givers, one inserts the gifts with
    their attribution; two reads count what was already there and how new gifts were
    attributed."""
    done = Recorded()
    if len(rows) > CHUNK:
        for start in range(0, len(rows), CHUNK):
            done.add(record(session, rows[start : start + CHUNK], now=now, window=window))
        return done
    if not rows:
        return done
    ids = [r.external_id for r in rows]
    known = set(session.scalars(select(Donation.external_id).where(Donation.external_id.in_(ids))))
    connection = session.connection()
    emails = sorted({r.email for r in rows if r.external_id not in known})
    if emails:
        created = connection.execute(_NEW_SUPPORTER, [{"email": e, "now": now} for e in emails])
        done.new_supporters = int(created.rowcount)
    params = [
        {
            "email": r.email,
            "amount_cents": r.amount_cents,
            "currency": r.currency,
            "donated_at": r.donated_at,
            "frequency": r.frequency,
            "external_id": r.external_id,
            "subscription_id": r.subscription_id,
            "message_id": r.message_id,
            "since": r.donated_at - window,
            "now": now,
        }
        for r in rows
        if r.external_id not in known
    ]
    if params:
        done.imported = int(connection.execute(_INSERT, params).rowcount)
    done.duplicates = len(rows) - done.imported
    if done.imported:
        new = [i for i in ids if i not in known]
        if any(r.frequency == "monthly" for r in rows):
            _end_late_payments(session, new)
        summaries.gifts_changed(session, new)
        for how, count in session.execute(
            select(Donation.attributed_by, func.count())
            .where(Donation.external_id.in_(new), Donation.attributed_by.is_not(None))
            .group_by(Donation.attributed_by)
        ):
            if how == REFERENCE:
                done.by_reference = count
            elif how == LAST_CLICK:
                done.by_last_click = count
    return done


def _end_late_payments(session: Session, external_ids: Sequence[str]) -> None:
    """New monthly payments made before their monthly gift's recorded end are ended with
    it (a platform's retry, or a file's later batch, after the cancellation)."""
    ended = monthly_gifts.ended_since(Donation)
    session.execute(
        update(Donation)
        .where(
            Donation.external_id.in_(external_ids),
            Donation.frequency == "monthly",
            Donation.cancelled_at.is_(None),
            ended.is_not(None),
        )
        .values(cancelled_at=ended)
        .execution_options(synchronize_session=False)
    )


Outcome = Literal["done", "already", "unknown"]


@dataclass(frozen=True)
class GiftState:
    """A recorded gift as a change to it needs it: its giver and what became of it."""

    email: str | None  # None: the giver's data was erased
    frequency: str
    donated_at: datetime
    refunded_at: datetime | None
    cancelled_at: datetime | None
    subscription_id: str | None = None  # the monthly gift a payment is of, if said


def states(session: Session, external_ids: Collection[str]) -> dict[str, GiftState]:
    """The recorded gifts among these external ids, in one read (a file's batch of refunds
    and cancellations)."""
    if not external_ids:
        return {}
    rows = session.execute(
        select(
            Donation.external_id,
            Supporter.email,
            Donation.frequency,
            Donation.donated_at,
            Donation.refunded_at,
            Donation.cancelled_at,
            Donation.subscription_id,
        )
        .select_from(Donation)
        .outerjoin(Supporter, Supporter.id == Donation.supporter_id)
        .where(Donation.external_id.in_(sorted(external_ids)))
    )
    return {
        external_id: GiftState(email, frequency, donated_at, refunded_at, cancelled_at, monthly)
        for external_id, email, frequency, donated_at, refunded_at, cancelled_at, monthly in rows
    }


def attribution(session: Session, external_id: str) -> tuple[int | None, str | None]:
    """The message a recorded gift is attributed to, and how (both None: unattributed)."""
    row = session.execute(
        select(Donation.message_id, Donation.attributed_by).where(
            Donation.external_id == external_id
        )
    ).first()
    return (row[0], row[1]) if row else (None, None)


def refund(session: Session, *, external_id: str, at: datetime) -> Outcome:
    """Date the refund of a gift; a repeated refund keeps the first date."""
    if refund_many(session, {external_id: at}):
        return "done"
    found = session.scalar(select(Donation.id).where(Donation.external_id == external_id))
    return "unknown" if found is None else "already"


def refund_many(session: Session, refunds: Mapping[str, datetime]) -> int:
    """Date the refunds of gifts (external id -> date) in one statement, each gift's
    first refund kept, and refresh the emails they were attributed to once; returns how
    many gifts it refunded."""
    if not refunds:
        return 0
    done = session.connection().execute(
        _REFUND, [{"external": e, "at": at} for e, at in sorted(refunds.items())]
    )
    refunded: int = done.rowcount
    if refunded:
        summaries.gifts_changed(session, list(refunds))
    return refunded


_DONATIONS = cast(Table, Donation.__table__)
# Core, not ORM: an executemany UPDATE keyed by a bound external id, one round trip.
_REFUND = (
    update(_DONATIONS)
    .where(_DONATIONS.c.external_id == bindparam("external"), _DONATIONS.c.refunded_at.is_(None))
    .values(refunded_at=bindparam("at", type_=UTCDateTime()))
)


def cancel_monthly(
    session: Session, *, at: datetime, email: str | None = None, subscription: str | None = None
) -> Outcome:
    """Date the end of a monthly gift: its payments made by `at`. With a `subscription`,
    the payments that name it (of the giver at `email` when given: another platform's
    giver may reuse the id) and its giver's payments that name none (recorded before the
    platform said, or from a file without the column: they may be its own); without, every
    monthly payment of the giver at `email`. `already` when they all are; `unknown` when
    no such payment was made by `at`."""
    giver = (
        None
        if email is None
        else select(Supporter.id).where(Supporter.email == email).scalar_subquery()
    )
    if subscription is not None:
        named = aliased(Donation)
        of_giver = (
            Donation.supporter_id.in_(
                select(named.supporter_id).where(named.subscription_id == subscription)
            )
            if giver is None
            else Donation.supporter_id == giver
        )
        its = Donation.subscription_id == subscription
        whose = and_(or_(its, Donation.subscription_id.is_(None)), of_giver)
        if giver is None:  # an erased giver's payments still end by their subscription
            whose = or_(its, whose)
    elif giver is not None:
        whose = Donation.supporter_id == giver
    else:
        raise ValueError("a subscription or an email names the monthly gift")
    monthly = and_(whose, Donation.frequency == "monthly", Donation.donated_at <= at)
    ended = list(
        session.scalars(
            update(Donation)
            .where(monthly, Donation.cancelled_at.is_(None))
            .values(cancelled_at=at)
            .returning(Donation.external_id)
            .execution_options(synchronize_session=False)
        )
    )
    if ended:
        summaries.gifts_changed(session, ended)
        return "done"
    return "already" if session.scalar(select(Donation.id).where(monthly).limit(1)) else "unknown"


def latest(
    supporter_id: ColumnElement[int] | InstrumentedAttribute[int],
    now: Moment,
    column: Literal["id", "amount_cents", "frequency", "monthly"],
) -> ScalarSelect[Any]:
    """A column of the supporter's last gift at `now` (NULL if none), correlated to the
    outer statement's `supporter_id`: one probe of ix_donations_supporter per supporter.
    `monthly`: whether it is a monthly gift not cancelled by `now`.

    One-off gifts and monthly payments alike, refunded ones left out (`counts`); on
    equal times the last recorded wins. The pure twin is
    engine.rules.conditions.last_gift: `last_gift` conditions and the amounts templates
    show must agree. Aliased, so that an outer statement over donations does not swallow
    this one's FROM by correlation."""
    gift = aliased(Donation)
    value = monthly_in_force(gift, now) if column == "monthly" else getattr(gift, column)
    return (
        select(value)
        .where(gift.supporter_id == supporter_id, counts(gift, now))
        .order_by(gift.donated_at.desc(), gift.id.desc())
        .limit(1)
        .scalar_subquery()
    )
