"""Clicks on tracked links: each click is a row; the first per link is also an event.

No IP address, no user agent: a click row is the message, the link and the time.

Prefetchers and security scanners (mail gateways that open every link of an email as it
arrives) are told apart by their timing (engine/rules/clicks.py): such clicks are kept,
flagged `automated`, and left out of attribution and rates.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Dialect,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from engine.rules import clicks as rules
from engine.store import click_counts
from engine.store.db import connection_of
from engine.store.idsets import among_bound, bound, json_rows
from engine.store.models import Click, Event, OutboxMessage
from engine.store.types import UTCDateTime

DEFAULT_BURST = timedelta(seconds=10)
# The advisory locks' first key for the emails a click batch holds (`messages`).
CLICK_LOCKS = 0x636C6B73  # "clks"


@dataclass(frozen=True)
class ClickIn:
    """One click on link `position` of message `message_id`, at `at`."""

    message_id: int
    position: int
    supporter_id: int | None
    at: datetime


@dataclass(frozen=True)
class Sent:
    """What a batch of clicks needs of a sent message, read in one statement (`messages`):
    who it went to and its template version (its links: engine.store.links), when it was
    sent, and the lowest and highest link clicked in the scanner rule's window."""

    supporter_id: int | None
    template: str
    version: str | None
    sent_at: datetime | None
    lowest: int | None
    highest: int | None


def messages(
    where: Session | Connection, message_ids: Collection[int], *, since: datetime, until: datetime
) -> dict[int, Sent]:
    """These messages (those that exist), with their clicks' lowest and highest link in
    (since, until]: one row a message, one statement. The click writer reads its batch's
    messages with it, their links then known by version: the first click of an email costs
    no read of its own (a fresh send's clicks are mostly first clicks).

    On PostgreSQL the messages are locked first, in a statement of their own: another
    process's writer recording clicks on them (`--workers 2`) is waited for, and its
    clicks are then in this read (a statement sees what was committed when it began), so
    a scanner opening two links at once through two processes is flagged as if the
    clicks came one after the other. SQLite has one writer at a time."""
    connection = connection_of(where)
    dialect = connection.dialect.name
    statements = _statements(dialect)
    values = {"ids": bound(dialect, message_ids), "since": since, "until": until}
    if statements.hold is not None:
        connection.execute(statements.hold, values)
    return {
        message_id: Sent(*rest)
        for message_id, *rest in connection.execute(statements.links, values)
    }


def record(
    where: Session | Connection,
    *,
    message_id: int,
    position: int,
    supporter_id: int | None,
    now: datetime,
    burst: timedelta = DEFAULT_BURST,
) -> None:
    """One click, as the click route records it."""
    record_many(where, [ClickIn(message_id, position, supporter_id, now)], burst=burst)


def record_many(
    where: Session | Connection,
    clicks: Sequence[ClickIn],
    *,
    burst: timedelta = DEFAULT_BURST,
    seen: Mapping[int, Sent] | None = None,
) -> None:
    """Clicks, each as `record` would at its own instant: the rows with their flags, the
    first click per link as an event, and the figures of the emails whose counted clicks
    changed, in a few statements whatever their number (the click route's batch of
    requests arrived together; a simulated hour of clicks): on PostgreSQL, the read of
    the messages and their recent clicks (`messages`, unless given as `seen`), and one
    statement writing it all, counts included (engine/store/click_counts.py).

    The flags are engine.rules.clicks' rule applied to the emails' recent clicks, read
    here in the writer's transaction, as if the clicks had come one at a time. `seen`:
    the clicks' messages as `messages` read them in this transaction, over a window from
    `burst` before the earliest click to the latest (or wider), if the caller has them."""
    if not clicks:
        return
    ordered = sorted(clicks, key=lambda c: c.at)
    connection = connection_of(where)
    dialect = connection.dialect.name
    statements = _statements(dialect)
    by_message: dict[int, list[ClickIn]] = {}
    for c in ordered:
        by_message.setdefault(c.message_id, []).append(c)
    since, until = ordered[0].at - burst, ordered[-1].at
    if seen is None:
        seen = messages(connection, by_message, since=since, until=until)
    recorded = _recent(connection, dialect, by_message, seen, since, until, burst)
    sent = {m: seen[m].sent_at for m in by_message if m in seen}
    flags: dict[int, bool] = {}  # id(ClickIn) -> automated
    flipped: set[int] = set()
    for message_id, new in by_message.items():
        verdict = rules.automated(
            recorded.get(message_id, ()),
            [rules.Seen(c.position, c.at) for c in new],
            sent_at=sent.get(message_id),
            burst=burst,
        )
        flags.update((id(c), flag) for c, flag in zip(new, verdict.new, strict=True))
        flipped |= verdict.flipped
    # Each email's counted clicks change by its new clicks that count, less its counted
    # clicks that stop counting: those the flip moved, not those it found flipped already.
    gained = Counter(c.message_id for c in ordered if not flags[id(c)])
    if flipped:
        moved = connection.execute(statements.flip, {"ids": bound(dialect, flipped)})
        gained.subtract(message_id for (message_id,) in moved)
    changed = {m: n for m, n in gained.items() if n}
    # The clicks and their events from one JSON parameter: an executemany cost
    # SQLAlchemy's Python a row for each (half the writer's time, bench/README.md).
    written = {
        "rows": _rows(connection.dialect, ordered, flags),
        "gained": click_counts.pairs(changed),
    }
    if statements.written is not None:
        connection.execute(statements.written, written)
    else:
        connection.execute(statements.insert, written)
        connection.execute(statements.events, written)
        click_counts.count(connection, changed)


def _rows(dialect: Dialect, ordered: Sequence[ClickIn], flags: dict[int, bool]) -> str:
    """The `rows` parameter of the inserts: each click's message, link, supporter, time
    (as its column stores it), flag, event key and event payload."""
    stamp = _stamp(dialect)
    return json.dumps(
        [
            [
                c.message_id,
                c.position,
                c.supporter_id,
                stamp(c.at),
                flags[id(c)],
                f"click:{c.message_id}:{c.position}",
                f'{{"message_id": {c.message_id}, "position": {c.position}}}',
            ]  # fmt: skip
            for c in ordered
        ]
    )


def _stamp(dialect: Dialect) -> Callable[[datetime], str]:
    """A time as the clicks' and events' columns take it: SQLite's text, or PostgreSQL's
    ISO 8601 with its offset (read back with a cast)."""
    process = _CLICKS.c.clicked_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None  # UTCDateTime converts every value

    def stamp(at: datetime) -> str:
        value = process(at)
        return value if isinstance(value, str) else value.isoformat()

    return stamp


def _recent(
    connection: Connection,
    dialect: str,
    by_message: Mapping[int, Sequence[ClickIn]],
    seen: Mapping[int, Sent],
    since: datetime,
    until: datetime,
    burst: timedelta,
) -> dict[int, list[rules.Seen]]:
    """The clicks in (since, until] of the messages whose new clicks (`by_message`, each
    in time order) the rule may flag: from the lowest and highest link the window's clicks
    of each message are on (`seen`), only those where that leaves the rule in doubt
    (rules.one_link_late): a reader clicking a link again, most clicks, costs no rows."""
    doubtful: list[int] = []
    for message_id, new in by_message.items():
        message = seen.get(message_id)
        if message is None or message.lowest is None or message.highest is None:
            continue  # no click of late
        positions = {c.position for c in new} | {message.lowest, message.highest}
        if not rules.one_link_late(
            positions, sent_at=message.sent_at, earliest=new[0].at, burst=burst
        ):
            doubtful.append(message_id)
    recorded: dict[int, list[rules.Seen]] = {}
    if doubtful:
        window = {"ids": bound(dialect, doubtful), "since": since, "until": until}
        for message_id, click_id, position, at, automated in connection.execute(
            _statements(dialect).recent, window
        ):
            recorded.setdefault(message_id, []).append(
                rules.Seen(position, at, bool(automated), click_id)
            )
    return recorded


_CLICKS = cast(Table, Click.__table__)
_OUTBOX = cast(Table, OutboxMessage.__table__)
_EVENTS = cast(Table, Event.__table__)
# What `messages` reads of each message before its window's links (`Sent`).
_MESSAGE = (
    _OUTBOX.c.id,
    _OUTBOX.c.supporter_id,
    _OUTBOX.c.template,
    _OUTBOX.c.template_version,
    _OUTBOX.c.sent_at,
)


class _Statements(NamedTuple):
    links: Select[Any]  # `messages`: (message id, *Sent)
    recent: Select[Any]
    insert: Any  # the clicks of `rows`
    events: Any  # their events, those not recorded yet
    flip: Any  # returns the message of each click it flagged
    written: Any  # PostgreSQL: all of a batch's writes as one statement; else None
    hold: Any  # PostgreSQL: the batch's emails held, in order; else None


@cache
def _statements(dialect: str) -> _Statements:
    """Built once per dialect, the ids bound as one parameter (engine/store/idsets.py): a
    click batch runs them every few milliseconds."""
    # The messages and their clicks of the window, through ix_clicks_message: so that a
    # gift recorded a minute later is never attributed to a scanner's click.
    in_window = and_(
        _CLICKS.c.message_id == _OUTBOX.c.id,
        _CLICKS.c.clicked_at > bindparam("since", type_=UTCDateTime()),
        _CLICKS.c.clicked_at <= bindparam("until", type_=UTCDateTime()),
    )
    window: Any = _CLICKS
    joined: Any = in_window
    position = _CLICKS.c.link_position
    if dialect == "postgresql":
        # One index probe per email whatever the statistics say: joined, the clicks growing
        # faster than ANALYZE follows made PostgreSQL scan the whole table (2 ms a batch
        # after 10,000 clicks, bench/README.md). Its ORDER BY keeps the planner from
        # turning it back into a join (an aggregate does too). SQLite has no LATERAL and
        # probes the index anyway.
        columns = (_CLICKS.c.id, _CLICKS.c.link_position, _CLICKS.c.clicked_at, _CLICKS.c.automated)
        probe = select(*columns).where(in_window).order_by(_CLICKS.c.id)
        window, joined = probe.lateral(), true()
        ends = select(func.min(position), func.max(position)).where(in_window).lateral()
        links = select(*_MESSAGE, *ends.c).join(ends, true())
    else:
        links = (
            select(*_MESSAGE, func.min(position), func.max(position))
            .select_from(_OUTBOX.outerjoin(_CLICKS, in_window))
            .group_by(_OUTBOX.c.id)
        )
    links = links.where(among_bound(dialect, _OUTBOX.c.id, "ids"))
    c = window.c
    recent = (
        select(_OUTBOX.c.id, c.id, c.link_position, c.clicked_at, c.automated)
        .select_from(_OUTBOX.join(window, joined))
        .where(among_bound(dialect, _OUTBOX.c.id, "ids"))
        .order_by(c.id)
    )
    flip = (
        update(_CLICKS)
        .where(among_bound(dialect, _CLICKS.c.id, "ids"), _CLICKS.c.automated.is_(False))
        .values(automated=true())
        .returning(_CLICKS.c.message_id)
    )
    insert, events = _inserts(dialect)
    written = hold = None
    if dialect == "postgresql":
        # One statement, one round trip: the inserts as data-modifying WITH queries of
        # the counting (engine/store/click_counts.py), PostgreSQL running each once.
        written = click_counts.counting(insert.cte("new_clicks"), events.cte("new_events"))
        # Advisory locks, one an email (its id in the two-integer key space, which
        # `engine.store.locks`' single keys never meet; ids equal modulo 2^31 - 1 share one,
        # which only makes their writers wait): no row is written, where locking the
        # outbox rows wrote each one and cost the click route 10 % (bench/README.md). In id
        # order, so that two writers never wait for each other in a circle.
        hold = text(
            "SELECT pg_advisory_xact_lock(:space, CAST(id % 2147483647 AS INTEGER))"
            " FROM (SELECT unnest(:ids) AS id ORDER BY 1) AS held"
        ).bindparams(
            bindparam("space", CLICK_LOCKS, type_=Integer),
            bindparam("ids", type_=ARRAY(BigInteger)),
        )
    return _Statements(links, recent, insert, events, flip, written, hold)


def _inserts(dialect: str) -> tuple[Any, Any]:
    """The clicks of the `rows` parameter (`_rows`), and their events: a link's first
    click records one, a later click's is already there (its source key is unique)."""
    given = json_rows(dialect, "rows")

    def field(index: int, type_: Any) -> Any:
        # PostgreSQL's `->>` gives text, cast; SQLite's gives the SQL value itself.
        found = given.c.value.op("->>")(index)
        return sql_cast(found, type_) if dialect == "postgresql" else type_coerce(found, type_)

    message_id, position, supporter_id = (
        field(0, BigInteger),
        field(1, Integer),
        field(2, BigInteger),
    )
    at = field(3, UTCDateTime())
    clicks = insert(_CLICKS).from_select(
        ["message_id", "link_position", "supporter_id", "clicked_at", "automated"],
        select(message_id, position, supporter_id, at, field(4, Boolean)).select_from(given),
    )
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    key = field(5, String)
    events = insert_(_EVENTS).from_select(
        ["kind", "source_key", "occurred_at", "recorded_at", "supporter_id", "payload"],
        # WHERE: SQLite would read the upsert's ON as a join's without one. In key order:
        # two writers inserting the same links' first clicks wait for each other's keys in
        # one order, never in a cycle (a deadlock aborts a batch on PostgreSQL).
        select(literal("link.clicked"), key, at, at, supporter_id, field(6, JSON))
        .select_from(given)
        .where(true())
        .order_by(key),
    )
    return clicks, events.on_conflict_do_nothing(index_elements=["source_key"])
