"""The summary rows counted again from scratch: for checks, and to fill them once.

`recount` sums what `step_counts` must hold from the outbox, clicks, gifts and events,
with the definitions of engine/store/step_figures.py; `signature_days`, what
`signature_days` must hold from the signatures; `rebuild` writes the summary tables from
them, set-based (a database migrated with sent emails, or a repair). Keeping them exact as
events arrive is engine/store/counts.py, and engine/store/signatures.py for the days.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from engine.store.db import no_jit
from engine.store.models import MessageCounts, OutboxMessage, Signature, SignatureDay, StepCounts
from engine.store.signature_days import utc_day
from engine.store.step_figures import FIGURES, PRODUCED, Key, StepFigures, flag, keyed

_MESSAGES = cast(Table, MessageCounts.__table__)
_STEPS = cast(Table, StepCounts.__table__)
_DAYS = cast(Table, SignatureDay.__table__)


def _summed(per_email: FromClause) -> Select[Any]:
    """Summary rows from per-email rows (`per_email`: message_counts, or `keyed` fresh),
    with the sent emails of the outbox."""
    sent = select(
        OutboxMessage.journey_id,
        OutboxMessage.step_id,
        func.coalesce(OutboxMessage.variant, ""),
        literal(1),
        *[literal(0) for _ in PRODUCED],
    ).where(OutboxMessage.status == "sent")
    produced = select(
        per_email.c.journey_id,
        per_email.c.step_id,
        per_email.c.variant,
        literal(0),
        *[per_email.c[n] for n in PRODUCED],
    )
    both = union_all(sent, produced).subquery()
    journey, step, variant, sent_, delivered, bounced, unsubscribed, clicks, gifts, *cents = both.c
    return select(
        journey,
        step,
        variant,
        func.sum(sent_),
        func.sum(delivered),
        func.sum(bounced),
        func.sum(unsubscribed),
        func.sum(flag(clicks > 0)),
        func.sum(clicks),
        func.sum(flag(gifts > 0)),
        func.sum(gifts),
        *[func.sum(c) for c in cents],
    ).group_by(journey, step, variant)


def recount(session: Session) -> dict[Key, StepFigures]:
    """Every summary row counted again from the outbox, clicks, gifts and events: what
    `step_counts` must hold (a full pass over the outbox; for checks and `rebuild`)."""
    no_jit(session)
    rows = session.execute(_summed(keyed(OutboxMessage).subquery())).all()
    found = {(j, s, v): StepFigures(*(int(x or 0) for x in rest)) for j, s, v, *rest in rows}
    return {key: figures for key, figures in found.items() if figures}


def _days(session: Session) -> Select[Any]:
    """(petition, UTC day, signatures signed that day), from every signature."""
    column = f"{Signature.__tablename__}.{Signature.signed_at.key}"
    day: ColumnElement[Any] = literal_column(utc_day(session.get_bind().dialect.name, column))
    return select(Signature.petition_id, day, func.count()).group_by(Signature.petition_id, day)


def signature_days(session: Session) -> dict[tuple[int, date], int]:
    """What `signature_days` must hold: every petition's signatures counted per UTC day
    (a full pass over the signatures; for checks and `rebuild`)."""
    return {
        (petition, d if isinstance(d, date) else date.fromisoformat(str(d))): int(n)
        for petition, d, n in session.execute(_days(session))
    }


def rebuild(session: Session) -> int:
    """Fill the summary tables from scratch, set-based (a database migrated with sent
    emails, or a repair); returns the summary rows written."""
    no_jit(session)
    session.execute(delete(SignatureDay))
    session.execute(
        _DAYS.insert().from_select(["petition_id", "day", "signatures"], _days(session))
    )
    session.execute(delete(MessageCounts))
    session.execute(delete(StepCounts))
    fresh = keyed(OutboxMessage).subquery()
    anything = or_(*[fresh.c[name] != 0 for name in PRODUCED])
    session.execute(
        _MESSAGES.insert().from_select(
            ["message_id", "journey_id", "step_id", "variant", *PRODUCED],
            select(fresh).where(anything),
        )
    )
    session.execute(
        _STEPS.insert().from_select(
            ["journey_id", "step_id", "variant", *FIGURES], _summed(_MESSAGES)
        )
    )
    steps = session.scalar(select(func.count()).select_from(StepCounts))
    days = session.scalar(select(func.count()).select_from(SignatureDay))
    return int(steps or 0) + int(days or 0)
