"""A tick's work, and a dispatch's, follow the rows that are due, not the size of the campaign.

Given a campaign where a few supporters are due (new signers to thank, people at the end of
their pause) among many who wait, when the same tick runs with ten times as many waiting,
then the database does about the same work: every statement is driven from the due rows
through an index, never a walk over the outbox or the enrolments per due row (the 140,000
signer tick that never finished, issue 10). The same holds for the dispatch of a few due
campaign emails among many already sent (its frequency-cap read of the recent sends once
walked every sent email of the outbox for each batch). Work is counted, not timed: SQLite's virtual
machine instructions, and on PostgreSQL the rows its scans of the two tables return, with
sequential scans disabled so that a statement without an index path shows up.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session

from engine.send.transport import MemoryTransport
from engine.store import milestones
from engine.store.models import Enrolment, OutboxMessage, Supporter
from engine.store.passes import tick
from tests.store.dispatch_helpers import queue_step, run
from tests.store.journey_helpers import seed, sent_by, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
MILESTONE = SIGNED + timedelta(days=1)
LATER = SIGNED + timedelta(days=2, hours=1)  # Friday, before anyone's pause is over
ASKED = MILESTONE + timedelta(days=5)  # a Tuesday morning, the update long sent
DUE = 5


@dataclass
class Work:
    """Work done by the database inside a block: in all, and by statement (the work from
    one statement's start to the next one's, keyed by the statement's text)."""

    total: int = 0
    by_statement: Counter[str] = field(default_factory=Counter)


_READ = (
    "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)"
    " FROM pg_stat_xact_user_tables WHERE relname IN ('outbox', 'enrolments')"
)


@contextmanager
def counted(session: Session) -> Iterator[Work]:
    """Count the work of the statements the block runs on the session's connection."""
    work = Work()
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    assert raw is not None
    steps = [0]
    if connection.dialect.name == "sqlite":
        assert isinstance(raw, sqlite3.Connection)

        def step() -> int:
            steps[0] += 1
            return 0

        raw.set_progress_handler(step, 100)

        def so_far() -> int:
            return steps[0]

    else:
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")

        def so_far() -> int:
            cursor = raw.cursor()
            cursor.execute(_READ)
            row = cursor.fetchone()
            cursor.close()
            assert row is not None
            return int(row[0])

    running: list[tuple[str, int]] = []

    def charge(now: int) -> None:
        if running:
            statement, since = running.pop()
            work.by_statement[statement] += now - since
            work.total += now - since

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        now = so_far()
        charge(now)
        running.append((" ".join(statement.split()), now))

    event.listen(connection, "before_cursor_execute", before)
    try:
        yield work
    finally:
        event.remove(connection, "before_cursor_execute", before)
        charge(so_far())
        if connection.dialect.name == "sqlite":
            assert isinstance(raw, sqlite3.Connection)
            raw.set_progress_handler(None, 0)


def thanked_and_updated(session: Session, waiting: int) -> tuple[Any, int]:
    """`waiting` + DUE signers, each thanked and sent the update (two sent emails each)."""
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    named = declared.conditions
    people = {f"w{i:05d}": (True, i % 2 == 0) for i in range(waiting + DUE)}
    sign(session, petition_id, SIGNED, people)
    tick(session, now=SIGNED, segments=named)
    sent_by(session, SIGNED)
    milestones.check(session, petition_id=petition_id, count=140000, now=MILESTONE)
    tick(session, now=MILESTONE, segments=named)
    sent_by(session, MILESTONE)
    return declared, petition_id


def work_of_a_tick(session: Session, waiting: int) -> Work:
    """A tick that thanks DUE new signers and asks DUE others, among `waiting` who wait."""
    declared, petition_id = thanked_and_updated(session, waiting)
    named = declared.conditions
    # Everyone waits in the pause until Sunday; DUE of them got their emails three days
    # earlier and are at its end already.
    first = select(Supporter.id).where(Supporter.email.like("w%")).order_by(Supporter.id)
    ids = session.scalars(first.limit(DUE)).all()
    session.execute(update(Enrolment).where(Enrolment.supporter_id.in_(ids)).values(due_at=LATER))
    for step, at in (("thanked", SIGNED), ("update", MILESTONE)):
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.supporter_id.in_(ids), OutboxMessage.step_id == step)
            .values(sent_at=at - timedelta(days=3))
        )
    sign(session, petition_id, LATER, {f"new{i}": (True, True) for i in range(DUE)})

    with counted(session) as work:
        summary = tick(session, now=LATER, segments=named)

    assert summary.enrolled == {"stop-reconnaissance-faciale": DUE}
    assert sum(summary.queued.values()) == 2 * DUE  # the new ones thanked, the due ones asked
    return work


def grown(small: Work, large: Work, statement: str) -> bool:
    """The statement did much more work at the large size (DUE units of slack: SQLite
    counts by hundreds of instructions, and index depth adds a little)."""
    return large.by_statement[statement] >= 1.5 * small.by_statement.get(statement, 0) + DUE


def growth(small: Work, large: Work) -> str:
    """The statements whose work grew the most, for the failure message."""
    ranked = sorted(
        large.by_statement,
        key=lambda s: large.by_statement[s] - small.by_statement.get(s, 0),
        reverse=True,
    )
    return "\n".join(
        f"{small.by_statement.get(s, 0)} -> {large.by_statement[s]}: {s[:600]}" for s in ranked[:3]
    )


def test_ten_times_as_many_waiting_cost_a_tick_about_the_same(session: Session) -> None:
    small = work_of_a_tick(session, waiting=100)
    session.rollback()

    large = work_of_a_tick(session, waiting=1000)

    # A walk over the waiting rows would make it ten times; index depth adds a little.
    n, m = small.total, large.total
    assert m < 1.5 * n, f"{n} then {m}; grew the most:\n{growth(small, large)}"
    # And statement by statement: over a hundred rows PostgreSQL reads whole tables by
    # plans that are cheap at that size and that it leaves at a thousand, which would hide
    # a statement that walks the waiting rows at a thousand behind the total.
    assert not [s for s in large.by_statement if grown(small, large, s)], growth(small, large)


def work_of_a_dispatch(session: Session, waiting: int) -> Work:
    """A dispatch of DUE first-gift asks, among `waiting` signers thanked and updated."""
    thanked_and_updated(session, waiting)
    for i in range(0, 2 * DUE, 2):  # signers who consented to fundraising
        queue_step(session, f"w{i:05d}", "ask-first", due_at=ASKED)

    with counted(session) as work:
        report = run(session, MemoryTransport(), ASKED)

    assert report.outcomes == {"sent": DUE}
    return work


def test_ten_times_as_many_emails_sent_cost_a_dispatch_about_the_same(session: Session) -> None:
    small = work_of_a_dispatch(session, waiting=100)
    session.rollback()

    large = work_of_a_dispatch(session, waiting=1000)

    n, m = small.total, large.total
    assert m < 1.5 * n, f"{n} then {m}; grew the most:\n{growth(small, large)}"
    assert not [s for s in large.by_statement if grown(small, large, s)], growth(small, large)


_SCANNED = (
    "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables"
    " WHERE relname = 'enrolments'"
)


def test_a_step_everyone_left_is_found_empty_without_reading_the_enrolments(
    session: Session,
) -> None:
    # given a thousand signers thanked, at the milestone wait when PostgreSQL's statistics
    # were last taken, then all moved on to the update by the milestone's pass
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    named = declared.conditions
    sign(session, petition_id, SIGNED, {f"w{i:04d}": (True, True) for i in range(1000)})
    tick(session, now=SIGNED, segments=named)
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(text("ANALYZE enrolments"))
    milestones.check(session, petition_id=petition_id, count=140000, now=MILESTONE)
    tick(session, now=MILESTONE, segments=named)

    # when the next pass finds nothing to do
    before = session.execute(text(_SCANNED)).scalar_one() if postgresql else 0
    summary = tick(session, now=MILESTONE + timedelta(hours=1), segments=named)
    after = session.execute(text(_SCANNED)).scalar_one() if postgresql else 0

    # then it learnt that through the due index, not by reading the table for a row its
    # stale statistics promised at once (six steps read whole here; 56 ms a step at
    # 140,000 enrolments, issue 10). A statement that stops at its first row may read one.
    assert sum(summary.queued.values()) == 0
    assert after - before < 10, f"{after - before} enrolments read by sequential scans"
