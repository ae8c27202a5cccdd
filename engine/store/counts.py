"""The figures per journey, step and variant, kept exact as events arrive.

`step_counts` holds one summary row per (journey, step, variant): what a funnel reads,
a few rows whatever the number of events behind them. Every writer that changes what an
email has produced (sent by the dispatcher, a provider's delivery event, a click, an
unsubscribe, a gift attributed, refunded or cancelled) calls `refresh` with the emails
it touched, in its own transaction. `refresh` recomputes what each of those emails has
produced from the tables themselves, compares it with what `message_counts` says it had
produced, and adds the difference to its step's row. So a change counts once however the
news of it arrives: a retried webhook, a duplicated event or a second click changes
nothing a first one did not, and a refund takes back exactly what its gift had added.

Counted (definitions are those of `_produced`, which `recount` sums from scratch):
sent (the outbox row is `sent`); delivered (the provider's last word about it says it
arrived: delivered, opened, clicked, unsubscribed, complained); bounced (bounced or
dropped); unsubscribed (an opt-out through its link, its List-Unsubscribe header or the
provider's: unsubscribe or spam complaint); clicks (not flagged automated) and clickers
(emails with at least one); gifts attributed to it and not refunded, and donors (emails
with at least one); one-off and monthly amounts of those gifts in cents (a cancelled
monthly gift no longer counts in the monthly amount).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import astuple, dataclass, fields
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from engine.store.idsets import among
from engine.store.models import (
    Click,
    Donation,
    Event,
    MessageCounts,
    OutboxMessage,
    StepCounts,
)

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
class Produced:
    """What one email has produced so far (a row of `message_counts`)."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    clicks: int = 0
    gifts: int = 0
    one_off_cents: int = 0
    monthly_cents: int = 0


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


PRODUCED = tuple(f.name for f in fields(Produced))
FIGURES = tuple(f.name for f in fields(StepFigures))


def share(produced: Produced) -> StepFigures:
    """What one email adds to its step's row."""
    return StepFigures(
        sent=produced.sent,
        delivered=produced.delivered,
        bounced=produced.bounced,
        unsubscribed=produced.unsubscribed,
        clickers=int(produced.clicks > 0),
        clicks=produced.clicks,
        donors=int(produced.gifts > 0),
        gifts=produced.gifts,
        one_off_cents=produced.one_off_cents,
        monthly_cents=produced.monthly_cents,
    )


def difference(before: Produced, after: Produced) -> StepFigures:
    """What the step's row gains when an email goes from `before` to `after`."""
    old, new = astuple(share(before)), astuple(share(after))
    return StepFigures(*(b - a for a, b in zip(old, new, strict=True)))


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _produced(message: Any) -> list[ColumnElement[Any]]:
    """What each email of the outer statement (`message`: the outbox or an alias) has
    produced, in the order of PRODUCED. Index probes only: the clicks and the gifts by
    their message key, the unsubscribe event by its unique source key."""
    counted = and_(Donation.message_id == message.id, Donation.refunded_at.is_(None))
    cents = func.coalesce(func.sum(Donation.amount_cents), 0)
    own_link = exists().where(
        Event.source_key == literal(UNSUBSCRIBE_KEY) + sql_cast(message.id, String)
    )
    return [
        _flag(message.status == "sent").label("sent"),
        _flag(message.delivery.in_(DELIVERED)).label("delivered"),
        _flag(message.delivery.in_(BOUNCED)).label("bounced"),
        _flag(or_(message.delivery.in_(OPTED_OUT), own_link)).label("unsubscribed"),
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
        .where(counted, Donation.frequency == "monthly", Donation.cancelled_at.is_(None))
        .scalar_subquery()
        .label("monthly_cents"),
    ]


def _keyed(message: Any) -> Select[Any]:
    """(id, journey, step, variant, *PRODUCED) of every email of the outbox."""
    return select(
        message.id.label("message_id"),
        message.journey_id.label("journey_id"),
        message.step_id.label("step_id"),
        func.coalesce(message.variant, "").label("variant"),
        *_produced(message),
    )


# A batch this size or larger reads enough emails for PostgreSQL to estimate its statement
# over `jit_above_cost`: compiling it then cost 2.5 s for 0.35 s of index probes (measured
# over 9,000 emails). Each statement runs once: its own transaction turns JIT off.
JIT_OFF_FROM = 100


def _no_jit(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("SET LOCAL jit = off")


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


_MESSAGES = cast(Table, MessageCounts.__table__)
_STEPS = cast(Table, StepCounts.__table__)
# Core executemany statements, one round trip for a batch.
_SET_PRODUCED = (
    update(_MESSAGES)
    .where(_MESSAGES.c.message_id == bindparam("mid"))
    .values({name: bindparam(f"v_{name}") for name in PRODUCED})
)


def refresh(session: Session, message_ids: Collection[int]) -> None:
    """Bring the summary rows up to date with what these emails have produced now.

    Call it after any change to what an email produced, in the same transaction; calling
    it for an email that did not change adds nothing. Four statements whatever the number
    of emails: the hot paths (a dispatch batch, a webhook batch, a click) call it once."""
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return
    if len(ids) >= JIT_OFF_FROM:
        _no_jit(session)
    # 1. Each email's row in message_counts, created empty if new, and locked: two
    # transactions refreshing one email (two clicks at once) take turns, and the second
    # reads what the first wrote. An upsert that rewrites a column with itself takes the
    # row lock on PostgreSQL and returns what the row holds; ordered by id, so that two
    # batches lock their common emails in the same order and cannot deadlock.
    source = (
        select(
            OutboxMessage.id,
            OutboxMessage.journey_id,
            OutboxMessage.step_id,
            func.coalesce(OutboxMessage.variant, ""),
            *[literal(0) for _ in PRODUCED],
        )
        .where(among(session, OutboxMessage.id, ids))
        .order_by(OutboxMessage.id)
    )
    claim = _insert(session)(MessageCounts).from_select(
        ["message_id", "journey_id", "step_id", "variant", *PRODUCED], source
    )
    claim = claim.on_conflict_do_update(
        index_elements=["message_id"], set_={"sent": _MESSAGES.c.sent}
    ).returning(*_MESSAGES.c)
    held = {row.message_id: row for row in session.execute(claim)}
    if not held:
        return
    # 2. What they have produced now, read after the lock (a later statement sees what a
    # transaction we waited for committed).
    now = session.execute(
        _keyed(OutboxMessage).where(among(session, OutboxMessage.id, list(held)))
    ).all()
    changed: list[dict[str, int]] = []
    gains: dict[Key, StepFigures] = {}
    for row in now:
        before = Produced(*(getattr(held[row.message_id], name) for name in PRODUCED))
        after = Produced(*(getattr(row, name) for name in PRODUCED))
        if after == before:
            continue
        changed.append({"mid": row.message_id, **{f"v_{n}": getattr(after, n) for n in PRODUCED}})
        key = (row.journey_id, row.step_id, row.variant)
        gains[key] = gains.get(key, StepFigures()) + difference(before, after)
    # 3. The new shares, and 4. their differences added to the steps' rows.
    if changed:
        session.connection().execute(_SET_PRODUCED, changed)
    add(session, gains)


def add(session: Session, gains: dict[Key, StepFigures]) -> None:
    """Add to the summary rows (created at zero), in key order so that concurrent writers
    take the rows' locks in one order."""
    rows = [
        {"journey_id": j, "step_id": s, "variant": v, **{n: getattr(g, n) for n in FIGURES}}
        for (j, s, v), g in sorted(gains.items())
        if g
    ]
    if not rows:
        return
    statement = _insert(session)(StepCounts)
    statement = statement.on_conflict_do_update(
        index_elements=["journey_id", "step_id", "variant"],
        set_={n: _STEPS.c[n] + statement.excluded[n] for n in FIGURES},
    )
    session.connection().execute(statement, rows)


def _summed(source: Any) -> Select[Any]:
    """Summary rows from per-email rows (`source`: message_counts, or `_keyed` fresh)."""
    return select(
        source.c.journey_id,
        source.c.step_id,
        source.c.variant,
        func.sum(source.c.sent),
        func.sum(source.c.delivered),
        func.sum(source.c.bounced),
        func.sum(source.c.unsubscribed),
        func.sum(_flag(source.c.clicks > 0)),
        func.sum(source.c.clicks),
        func.sum(_flag(source.c.gifts > 0)),
        func.sum(source.c.gifts),
        func.sum(source.c.one_off_cents),
        func.sum(source.c.monthly_cents),
    ).group_by(source.c.journey_id, source.c.step_id, source.c.variant)


def recount(session: Session) -> dict[Key, StepFigures]:
    """Every summary row counted again from the outbox, clicks, gifts and events: what
    `step_counts` must hold (a full pass over the outbox; for checks and `rebuild`)."""
    _no_jit(session)
    rows = session.execute(_summed(_keyed(OutboxMessage).subquery())).all()
    found = {(j, s, v): StepFigures(*(int(x or 0) for x in rest)) for j, s, v, *rest in rows}
    return {key: figures for key, figures in found.items() if figures}


def rebuild(session: Session) -> int:
    """Fill both tables from scratch, set-based (a database migrated with sent emails, or a
    repair); returns the summary rows written."""
    _no_jit(session)
    session.execute(delete(MessageCounts))
    session.execute(delete(StepCounts))
    fresh = _keyed(OutboxMessage).subquery()
    anything = or_(*[fresh.c[name] != 0 for name in PRODUCED])
    session.execute(
        MessageCounts.__table__.insert().from_select(  # type: ignore[attr-defined]
            ["message_id", "journey_id", "step_id", "variant", *PRODUCED],
            select(fresh).where(anything),
        )
    )
    session.execute(
        StepCounts.__table__.insert().from_select(  # type: ignore[attr-defined]
            ["journey_id", "step_id", "variant", *FIGURES], _summed(_MESSAGES)
        )
    )
    return int(session.scalar(select(func.count()).select_from(StepCounts)) or 0)


@dataclass(frozen=True)
class StepRow:
    step_id: str
    variant: str | None
    figures: StepFigures


def read(session: Session, journey_id: str) -> list[StepRow]:
    """A journey's summary rows (a primary-key range: as fast at 10 million events as at
    ten)."""
    rows = session.execute(
        select(StepCounts.step_id, StepCounts.variant, *[_STEPS.c[n] for n in FIGURES])
        .where(StepCounts.journey_id == journey_id)
        .order_by(StepCounts.step_id, StepCounts.variant)
    ).all()
    return [StepRow(s, v or None, StepFigures(*(int(x) for x in rest))) for s, v, *rest in rows]


def gifts_changed(session: Session, external_ids: Collection[str]) -> None:
    """Refresh the emails these gifts (by the payment platform's id) are attributed to,
    after recording, refunding or cancelling them. A gift moved from one email to another
    must refresh the email it left as well (`refresh`)."""
    if not external_ids:
        return
    found = session.scalars(
        select(Donation.message_id).where(
            Donation.external_id.in_(sorted(external_ids)), Donation.message_id.is_not(None)
        )
    ).all()
    refresh(session, [m for m in found if m is not None])
