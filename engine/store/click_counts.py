"""Clicks counted where they are recorded (engine/store/clicks.py): each email's counted
clicks in its `message_counts` row, and its step's summary row's clicks and clickers.

What the clickers' gain is, once: an email whose counted clicks go from none to some is a
clicker more, from some to none one less, read from its row as the increment leaves it
and what it gained. On SQLite `count` runs the increment, then the summary rows' share
read from the rows; on PostgreSQL the click writer's batch runs both in its one statement
(`counting`), the share read from the increment's RETURNING.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    case,
    func,
    literal,
    select,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import CTE

from engine.store import step_figures
from engine.store.db import connection_of
from engine.store.idsets import json_rows
from engine.store.models import MessageCounts, OutboxMessage, StepCounts

_OUTBOX = cast(Table, OutboxMessage.__table__)
_MESSAGES = cast(Table, MessageCounts.__table__)
_STEPS = cast(Table, StepCounts.__table__)


def count(where: Session | Connection, gained: Mapping[int, int]) -> None:
    """Add to each email's counted clicks (`gained`: message id -> clicks, negative for
    clicks that stopped counting) and to its step's summary row: the clicks, and a clicker
    for an email whose clicks go from none to some (one less from some to none).

    Two statements whatever the number of emails, instead of `counts.refresh`'s recount
    of everything each email produced: an increment of the email's row under its lock,
    then the summary rows' share of it, from what each email's row holds now and what it
    gained (so what it held before is known set-based, as `counts.add_sent` counts the
    rows an UPDATE moved). An email without a row has produced nothing
    (engine/store/counts.py): its row is created with these clicks alone."""
    if not gained:
        return
    connection = connection_of(where)
    increment, summed = _statements(connection.dialect.name)
    values = {"gained": pairs(gained)}
    connection.execute(increment, values)
    connection.execute(summed, values)


def pairs(gained: Mapping[int, int]) -> str:
    """The `gained` parameter: (message id, clicks) pairs in id order."""
    return json.dumps(sorted(gained.items()))


def counting(*writes: CTE) -> Any:
    """PostgreSQL: the increment and the summary rows' share as one statement, with
    `writes` (data-modifying WITH queries, run once each, referenced or not) before them.
    No part reads a table another writes (one snapshot for all): the share reads the
    emails' rows as the increment returns them. Its parameter is `gained` (`pairs`)."""
    counted = _increment("postgresql").returning(*_COUNTED).cte("counted")
    return _summed("postgresql", counted).add_cte(*writes)


@cache
def _statements(dialect: str) -> tuple[Any, Any]:
    """`count`'s two statements, built once per dialect."""
    return _increment(dialect), _summed(dialect, _MESSAGES)


def _gained(dialect: str) -> tuple[Any, Any, Any]:
    """The `gained` parameter as rows: (the table-valued function, message id, clicks)."""
    given = json_rows(dialect, "gained")
    message_id, clicks = (sql_cast(given.c.value.op("->>")(i), BigInteger) for i in (0, 1))
    return given, message_id, clicks


def _increment(dialect: str) -> Any:
    """`count`'s increment: each email's row created with its clicks gained or added to,
    in id order (two writers lock their common emails in one order)."""
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    given, message_id, clicks = _gained(dialect)
    zero = [literal(0) if name != "clicks" else clicks for name in step_figures.PRODUCED]
    source = (
        select(
            _OUTBOX.c.id,
            _OUTBOX.c.journey_id,
            _OUTBOX.c.step_id,
            func.coalesce(_OUTBOX.c.variant, ""),
            *zero,
        )  # fmt: skip
        .select_from(given)
        .where(_OUTBOX.c.id == message_id)
        .order_by(_OUTBOX.c.id)
    )
    statement = insert_(_MESSAGES).from_select(
        ["message_id", "journey_id", "step_id", "variant", *step_figures.PRODUCED], source
    )
    return statement.on_conflict_do_update(
        index_elements=["message_id"],
        set_={"clicks": _MESSAGES.c.clicks + statement.excluded.clicks},
    )


# What the summary rows' share needs of each email's row after the increment.
_COUNTED = (
    _MESSAGES.c.message_id,
    _MESSAGES.c.journey_id,
    _MESSAGES.c.step_id,
    _MESSAGES.c.variant,
    _MESSAGES.c.clicks,
)


def _summed(dialect: str, counted: Any) -> Any:
    """The summary rows' share of the emails' gains (`gained`), from `counted`, their rows
    as the increment left them: their clicks, and per email a clicker more when its clicks
    went from none to some (one less from some to none). Upserted in key order."""
    given, message_id, added = _gained(dialect)
    now = counted.c.clicks
    gains = {
        "clickers": func.sum(case((now > 0, 1), else_=0) - case((now - added > 0, 1), else_=0)),
        "clicks": func.sum(added),
    }
    keys = (counted.c.journey_id, counted.c.step_id, counted.c.variant)
    source = (
        select(*keys, *[gains.get(n, literal(0)) for n in step_figures.FIGURES])
        # The gains drive: one primary-key probe per email (SQLite reads this order).
        .select_from(given.join(counted, counted.c.message_id == message_id))
        .where(true())  # SQLite would read the upsert's ON as the join's
        .group_by(*keys)
        .order_by(*keys)
    )
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_(_STEPS).from_select(
        ["journey_id", "step_id", "variant", *step_figures.FIGURES], source
    )
    return statement.on_conflict_do_update(
        index_elements=["journey_id", "step_id", "variant"],
        set_={n: _STEPS.c[n] + statement.excluded[n] for n in gains},
    )
