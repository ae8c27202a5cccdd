"""What the figures count: a step's summary row, and what one email has produced.

`StepFigures` is a row of `step_counts` (one per journey, step and variant);
`produced` is the SQL of what each email has produced besides being sent, a row of
`message_counts` in the order of PRODUCED, and `share` what such a row adds to its step's.
The writers that keep the rows exact are engine/store/counts.py; `recount`, which sums
them from scratch with the same definitions, is engine/store/recounts.py.

Counted (definitions are those of `produced`):
sent (the outbox row is `sent`); delivered (the provider's last word about it says it
arrived: delivered, opened, clicked, unsubscribed, complained); bounced (bounced or
dropped); unsubscribed (an opt-out through its link, its List-Unsubscribe header or the
provider's: unsubscribe or spam complaint); clicks (not flagged automated) and clickers
(emails with at least one); gifts attributed to it and not refunded, and donors (emails
with at least one); one-off and monthly amounts of those gifts in cents: a monthly gift
counts once in the monthly amount, at its first payment (a platform hands back the
email's reference with every payment: six months of a 10 € gift are 10 € a month, not
60), and no longer once cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql import Select

from engine.store import monthly_gifts
from engine.store.models import Click, Donation, Event

# Provider states (engine.track.sendgrid_events: the outbox's `delivery` holds the event
# name) that say the email arrived, that it did not, and that its reader opted out.
DELIVERED = ("delivered", "open", "click", "unsubscribe", "group_unsubscribe", "spamreport")
BOUNCED = ("bounce", "dropped")
OPTED_OUT = ("unsubscribe", "group_unsubscribe", "spamreport")
# The event an unsubscribe through an email's own link records (engine.store.suppressions).
UNSUBSCRIBE_KEY = "unsubscribe:"

Key = tuple[str, str, str]  # journey, step, variant ('' without variants)


def unsubscribe_key(message_id: int) -> str:
    """The source key of the event an unsubscribe through this email records."""
    return f"{UNSUBSCRIBE_KEY}{message_id}"


@dataclass(frozen=True)
class StepFigures:
    """A summary row: sums over a step's emails (clickers, donors: emails with one or more)."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    clickers: int = 0
    clicks: int = 0
    donors: int = 0
    gifts: int = 0
    one_off_cents: int = 0
    monthly_cents: int = 0

    def __add__(self, other: StepFigures) -> StepFigures:
        return StepFigures(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __bool__(self) -> bool:
        return any(astuple(self))


FIGURES = tuple(f.name for f in fields(StepFigures))
# What one email has produced besides being sent: a `message_counts` row, in this order.
PRODUCED = ("delivered", "bounced", "unsubscribed", "clicks", "gifts", "one_off_cents",
            "monthly_cents")  # fmt: skip


def share(produced: Sequence[int]) -> tuple[int, ...]:
    """What an email that has produced `produced` (in the order of PRODUCED) adds to its
    step's row, in the order of FIGURES (its `sent` is counted apart: 0 here)."""
    delivered, bounced, unsubscribed, clicks, gifts, one_off, monthly = produced
    return (0, delivered, bounced, unsubscribed, int(clicks > 0), clicks, int(gifts > 0), gifts,
            one_off, monthly)  # fmt: skip


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def produced(message: Any) -> list[ColumnElement[Any]]:
    """What each email of the outer statement (`message`: the outbox or an alias) has
    produced, in the order of PRODUCED. Index probes only: the clicks and the gifts by
    their message key, the unsubscribe event by its unique source key."""
    counted = and_(Donation.message_id == message.id, Donation.refunded_at.is_(None))
    # An integer on both databases (PostgreSQL's sum of bigints is a numeric).
    cents = sql_cast(func.coalesce(func.sum(Donation.amount_cents), 0), BigInteger)
    own_link = exists().where(
        Event.source_key == literal(UNSUBSCRIBE_KEY) + sql_cast(message.id, String)
    )

    delivery: ColumnElement[str | None] = message.delivery

    def state_in(states: tuple[str, ...]) -> ColumnElement[bool]:
        # Each state its own parameter: an expanding IN is rendered again at each run.
        return delivery.in_([literal(state) for state in states])

    return [
        flag(state_in(DELIVERED)).label("delivered"),
        flag(state_in(BOUNCED)).label("bounced"),
        flag(or_(state_in(OPTED_OUT), own_link)).label("unsubscribed"),
        select(func.count())
        .where(Click.message_id == message.id, Click.automated.is_(False))
        .scalar_subquery()
        .label("clicks"),
        select(func.count()).where(counted).scalar_subquery().label("gifts"),
        select(cents)
        .where(counted, Donation.frequency == "one-off")
        .scalar_subquery()
        .label("one_off_cents"),
        select(cents)
        .where(
            counted,
            monthly_gifts.in_force(Donation),
            monthly_gifts.first_payment(Donation, lambda earlier: earlier.message_id == message.id),
        )
        .scalar_subquery()
        .label("monthly_cents"),
    ]


def keyed(message: Any) -> Select[Any]:
    """(id, journey, step, variant, *PRODUCED) of every email of the outbox."""
    return select(
        message.id.label("message_id"),
        message.journey_id.label("journey_id"),
        message.step_id.label("step_id"),
        func.coalesce(message.variant, "").label("variant"),
        *produced(message),
    )
