"""The figures per journey, step and variant, kept exact as events arrive.

`step_counts` holds one summary row per (journey, step, variant): what a funnel reads,
a few rows whatever the number of events behind them. Two ways keep it exact, each in the
writer's own transaction:

- `sent` is counted where it happens. An outbox row becomes `sent` once and never leaves
  that state, by an UPDATE whose WHERE only matches rows not sent yet (the dispatcher's
  results, ambiguous sends confirmed, the simulator's virtual sends); that UPDATE returns
  the rows it moved and `add_sent` adds them to their steps, one upsert per batch. A
  retried outcome moves no row and adds nothing. No per-email row is written on this
  path: it is the one every email takes. Clicks recorded by `clicks.record_many` (the
  click route, the simulator) are counted where they happen too: each inserted click
  that counts and each click the scanner rule's UPDATE moved out of the count
  (engine.store.click_counts.count), added to the email's `message_counts` row under its lock,
  which tells whether the email just gained or lost its clicker.
- Everything else an email produces (a provider's delivery event, an unsubscribe, a
  gift attributed, refunded or cancelled) comes through `refresh` with the
  emails it touched. `refresh` recomputes what each of them has produced from the tables
  themselves, compares it with what `message_counts` says it had produced, and adds the
  difference to its step's row. So a change counts once however the news of it arrives: a
  retried webhook, a duplicated event or a second click changes nothing a first one did
  not, and a refund takes back exactly what its gift had added. An email has a
  `message_counts` row from its first such event on.

What each figure counts is engine/store/step_figures.py; a full recount from the tables,
engine/store/recounts.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import BigInteger, Table, func, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.db import no_jit
from engine.store.idsets import among_bound, bound, json_rows
from engine.store.models import Donation, MessageCounts, OutboxMessage, StepCounts
from engine.store.step_figures import FIGURES, PRODUCED, Key, StepFigures, keyed, share

# A batch this size or larger reads enough emails for PostgreSQL to estimate its statement
# over `jit_above_cost`: compiling it then cost 2.5 s for 0.35 s of index probes (measured
# over 9,000 emails). Each statement runs once: its own transaction turns JIT off.
JIT_OFF_FROM = 100

_MESSAGES = cast(Table, MessageCounts.__table__)
_STEPS = cast(Table, StepCounts.__table__)
_OUTBOX = cast(Table, OutboxMessage.__table__)
# What `add_sent` needs of each row an UPDATE moved to `sent`: that UPDATE's RETURNING.
MOVED = (_OUTBOX.c.journey_id, _OUTBOX.c.step_id, _OUTBOX.c.variant)


class _Statements(NamedTuple):
    hold: Any
    now: Any
    keep: Any
    add: Any


@cache
def _statements(dialect: str) -> _Statements:
    """The hot statements, built once per dialect and run with the ids as one parameter
    (`ids`): building them for each call cost more Python than running them (a refresh
    of one email spent 6 ms building its four statements, 0.3 ms in SQLite)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    ids = among_bound(dialect, OutboxMessage.id, "ids")
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
        .where(ids)
        .order_by(OutboxMessage.id)
    )
    hold = (
        insert(_MESSAGES)
        .from_select(["message_id", "journey_id", "step_id", "variant", *PRODUCED], source)
        .on_conflict_do_update(
            index_elements=["message_id"], set_={"delivered": _MESSAGES.c.delivered}
        )
        .returning(_MESSAGES.c.message_id, *[_MESSAGES.c[n] for n in PRODUCED])
    )
    # 3. The new values of the rows held (all exist), one UPDATE from the rows given as
    # one JSON parameter: an executemany cost 48 ms for 1,000 emails on PostgreSQL
    # (psycopg parses each statement's text) and 14 ms of SQLAlchemy's Python on SQLite.
    given = json_rows(dialect, "rows")
    field = [sql_cast(given.c.value.op("->>")(i), BigInteger) for i in range(1 + len(PRODUCED))]
    keep = (
        update(_MESSAGES)
        .where(_MESSAGES.c.message_id == field[0])
        .values(dict(zip(PRODUCED, field[1:], strict=True)))
    )
    # 4. Differences added to the summary rows, created at zero.
    add = insert(_STEPS)
    add = add.on_conflict_do_update(
        index_elements=["journey_id", "step_id", "variant"],
        set_={n: _STEPS.c[n] + add.excluded[n] for n in FIGURES},
    )
    # 2. What they have produced now.
    return _Statements(hold=hold, now=keyed(OutboxMessage).where(ids), keep=keep, add=add)


def refresh(session: Session, message_ids: Collection[int]) -> None:
    """Bring the summary rows up to date with what these emails have produced now, sent
    apart (`add_sent`).

    Call it after any change to what an email produced, in the same transaction; calling
    it for an email that did not change adds nothing. Four statements whatever the number
    of emails: a webhook batch, a click or a gift calls it once."""
    ids = sorted({int(i) for i in message_ids})
    if not ids:
        return
    if len(ids) >= JIT_OFF_FROM:
        no_jit(session)
    dialect = session.get_bind().dialect.name
    statements = _statements(dialect)
    connection = session.connection()
    held = {
        row[0]: tuple(row[1:])
        for row in connection.execute(statements.hold, {"ids": bound(dialect, ids)})
    }
    if not held:
        return
    # Read after the lock: a later statement sees what a transaction we waited for
    # committed.
    now = connection.execute(statements.now, {"ids": bound(dialect, held)})
    changed: list[tuple[int, ...]] = []
    gains: dict[Key, list[int]] = {}
    for message_id, journey_id, step_id, variant, *values in now:
        after = tuple(values)
        before = held[message_id]
        if after == before:
            continue
        changed.append((message_id, *after))  # the UPDATE's row: id, then PRODUCED
        gained = gains.setdefault((journey_id, step_id, variant), [0] * len(FIGURES))
        for i, (old, new) in enumerate(zip(share(before), share(after), strict=True)):
            gained[i] += new - old
    if changed:
        connection.execute(statements.keep, {"rows": json.dumps(changed)})
    add(session, {key: StepFigures(*gained) for key, gained in gains.items()})


def add_sent(session: Session, moved: Iterable[Sequence[str | None]]) -> int:
    """Count emails just marked sent: `moved` holds the (journey, step, variant) of each
    row the marking UPDATE moved to `sent` (its RETURNING), so that a retried outcome,
    which moves no row, adds nothing. One upsert per batch; returns the emails counted."""
    tally = Counter((str(j), str(s), v or "") for j, s, v in moved)
    add(session, {key: StepFigures(sent=n) for key, n in tally.items()})
    return sum(tally.values())


def add(session: Session, gains: dict[Key, StepFigures]) -> None:
    """Add to the summary rows (created at zero), in key order so that concurrent writers
    take the rows' locks in one order."""
    rows = [
        {"journey_id": j, "step_id": s, "variant": v, **{n: getattr(g, n) for n in FIGURES}}
        for (j, s, v), g in sorted(gains.items())
        if g
    ]
    if rows:
        dialect = session.get_bind().dialect.name
        session.connection().execute(_statements(dialect).add, rows)


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
