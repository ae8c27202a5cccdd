"""The group-commit writer behind the click route, on SQLite and PostgreSQL: clicks that
arrive together share one transaction, each is recorded once, and a batch that fails is
written again click by click, so that only the failing click answers an error."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine.errors import Unavailable
from engine.store import counts, links, recounts
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Click, Event, OutboxMessage, Supporter
from engine.track.clicks import Click as ClickToken
from engine.track.clicks import ClickWriter
from tests.factories import unique

SENT = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
LATER = SENT + timedelta(hours=3)
URLS = ["https://example.org/a", "https://example.org/b"]


@pytest.fixture
def engine(committed_url: str) -> Iterator[Engine]:
    """The test's own engine: the listeners it adds go with it."""
    engine = make_engine(committed_url)
    yield engine
    engine.dispose()


def sent_messages(engine: Engine, journey: str, count: int) -> list[int]:
    """`count` sent emails of one journey of their own, each to its own supporter, with a
    version of two links."""
    version = unique("v")
    with make_sessionmaker(engine).begin() as session:
        links.remember(session, "update", version, URLS)
        ids = []
        for _ in range(count):
            who = Supporter(email=f"{unique('r')}@example.fr", locale="fr", created_at=SENT)
            session.add(who)
            session.flush()
            row = OutboxMessage(
                enrolment_id=who.id, step_id="update", supporter_id=who.id, journey_id=journey,
                journey_version_id=1, template="update", variant=None, transactional=False,
                status="sent", due_at=SENT, created_at=SENT, sent_at=SENT,
                template_version=version, attempts=1,
            )  # fmt: skip
            session.add(row)
            session.flush()
            ids.append(row.id)
        counts.add_sent(session, [(journey, "update", None)] * count)  # as the dispatch does
        return ids


def writer(engine: Engine, *, wait_s: float = 0) -> ClickWriter:
    # wait_s=0: the clicks of one `gather` are all queued before the batch starts
    return ClickWriter(
        engine,
        clock=lambda: LATER,
        secret="s",
        donation_url=None,
        burst=timedelta(seconds=10),
        wait_s=wait_s,
    )


def together(recorder: ClickWriter, clicks: list[ClickToken]) -> list[object]:
    """The clicks arriving at once; each one's answer, or its error."""

    async def scenario() -> list[object]:
        recorder.start()
        try:
            return list(
                await asyncio.gather(*(recorder.follow(c) for c in clicks), return_exceptions=True)
            )
        finally:
            await recorder.stop()

    return asyncio.run(scenario())


def clicks_of(engine: Engine, message_ids: list[int]) -> dict[int, int]:
    with make_sessionmaker(engine)() as session:
        rows = session.execute(
            select(Click.message_id, func.count())
            .where(Click.message_id.in_(message_ids))
            .group_by(Click.message_id)
        ).all()
    return {m: n for m, n in rows}


def test_clicks_arriving_together_share_one_transaction_and_each_is_recorded_once(
    engine: Engine,
) -> None:
    # Given ten sent emails, and forty clicks arriving at once (four on each email's link)
    journey = unique("j")
    messages = sent_messages(engine, journey, 10)
    clicks = [ClickToken(m, 1) for m in messages for _ in range(4)]
    commits: list[object] = []
    event.listen(engine, "commit", commits.append)

    # When the writer records them
    answers = together(writer(engine), clicks)

    # Then each is answered with its link's URL, after one commit for all
    assert answers == [URLS[1]] * 40
    assert len(commits) == 1
    # And each is recorded once, its link's first click once in the event log
    assert clicks_of(engine, messages) == dict.fromkeys(messages, 4)
    with make_sessionmaker(engine)() as session:
        keys = session.scalars(
            select(Event.source_key).where(Event.source_key.in_([f"click:{m}:1" for m in messages]))
        ).all()
        assert sorted(keys) == sorted(f"click:{m}:1" for m in messages)
        # And the summary rows are those a recount gives
        assert counted(session, journey) == (40, 10)


def test_a_failing_batch_is_written_again_click_by_click_and_loses_nothing(
    engine: Engine,
) -> None:
    # Given three sent emails, and a database that refuses to store a click of the second
    journey = unique("j")
    first, broken, third = sent_messages(engine, journey, 3)

    def refuse(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "INSERT INTO clicks" in statement and broken in _messages(parameters):
            raise OperationalError(statement, parameters, Exception("disk I/O error"))

    event.listen(engine, "before_cursor_execute", refuse)

    # When clicks on the three arrive together
    answers = together(writer(engine), [ClickToken(m, 0) for m in (first, broken, third)])

    # Then the others are stored and redirected; the failing one answers the database's
    # error (a 503 over HTTP) and is not stored
    assert answers[0] == answers[2] == URLS[0]
    assert isinstance(answers[1], OperationalError)
    assert clicks_of(engine, [first, broken, third]) == {first: 1, third: 1}

    # And once the database accepts it again, the reader's retry is stored once
    event.remove(engine, "before_cursor_execute", refuse)
    assert together(writer(engine), [ClickToken(broken, 0)]) == [URLS[0]]
    assert clicks_of(engine, [first, broken, third]) == {first: 1, broken: 1, third: 1}
    with make_sessionmaker(engine)() as session:
        (row,) = counts.read(session, journey)
        assert row.figures.clicks == 3
        assert recounts.recount(session)[(journey, "update", "")] == row.figures


def test_a_batch_whose_commit_answer_is_lost_is_not_written_again(engine: Engine) -> None:
    # Given two sent emails, and a database whose connection drops right after it applied
    # the batch's commit, before answering it (the commit done here, then the connection
    # closed under the driver, whose own commit then fails as a lost connection)
    journey = unique("j")
    messages = sent_messages(engine, journey, 2)

    def commit_then_drop(connection: Any) -> None:
        raw = connection.connection.dbapi_connection
        raw.commit()
        raw.close()

    event.listen(engine, "commit", commit_then_drop)

    # When clicks on both arrive together
    try:
        answers = together(writer(engine), [ClickToken(m, 0) for m in messages])
    finally:
        event.remove(engine, "commit", commit_then_drop)

    # Then both are answered "try again" (a 503) and stored once, not written a second
    # time on a new connection; the summary rows still equal a recount
    assert all(isinstance(a, Unavailable) for a in answers)
    assert clicks_of(engine, messages) == dict.fromkeys(messages, 1)
    with make_sessionmaker(engine)() as session:
        (row,) = counts.read(session, journey)
        assert recounts.recount(session)[(journey, "update", "")] == row.figures


def test_a_reader_clicking_a_link_again_costs_no_read_of_the_recent_clicks(
    engine: Engine,
) -> None:
    # Given two sent emails, each clicked once on its second link, and on the first one a
    # second link clicked within the burst (a scanner's)
    journey = unique("j")
    reader, scanner = sent_messages(engine, journey, 2)
    together(writer(engine), [ClickToken(reader, 1), ClickToken(scanner, 1)])
    selects: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", note)

    # When the reader clicks the same link again, alone, then with the scanner's second link
    alone = together(writer(engine), [ClickToken(reader, 1)])
    read_alone = [s for s in selects if "automated" in s]
    both = together(writer(engine), [ClickToken(reader, 1), ClickToken(scanner, 0)])

    # Then the reader's click alone reads which links were clicked of late, not the clicks
    # themselves; the scanner's needs them, and flags its two clicks
    assert alone == [URLS[1]]
    assert read_alone == []
    assert both == [URLS[1], URLS[0]]
    assert len([s for s in selects if "automated" in s]) == 1
    with make_sessionmaker(engine)() as session:
        flags = session.execute(select(Click.message_id, Click.automated).order_by(Click.id)).all()
        assert [f for m, f in flags if m == reader] == [False] * 3
        assert [f for m, f in flags if m == scanner] == [True, True]
        assert counted(session, journey) == (3, 1)


def test_a_batch_waits_for_as_many_clicks_as_the_last_one_had_not_for_its_delay(
    engine: Engine,
) -> None:
    # Given a writer that would let clicks gather for a minute before a batch
    messages = sent_messages(engine, unique("j"), 5)
    recorder = writer(engine, wait_s=60)
    commits: list[object] = []
    event.listen(engine, "commit", commits.append)

    async def scenario() -> tuple[object, object, int, object]:
        recorder.start()
        try:
            # When a click comes at rest, then three arrive together
            alone = await asyncio.wait_for(recorder.follow(ClickToken(messages[0], 0)), 5)
            three = [asyncio.ensure_future(recorder.follow(ClickToken(m, 0))) for m in messages[:3]]
            answered = await asyncio.wait_for(asyncio.gather(*three), 5)
            # and then two of the three clickers come back, and a third after the loop went
            # round a few times
            again = [asyncio.ensure_future(recorder.follow(ClickToken(m, 1))) for m in messages[:2]]
            for _ in range(10):
                await asyncio.sleep(0)
            before_the_third = len(commits)
            again.append(asyncio.ensure_future(recorder.follow(ClickToken(messages[4], 1))))
            return (
                alone,
                answered,
                before_the_third,
                await asyncio.wait_for(asyncio.gather(*again), 5),
            )
        finally:
            await recorder.stop()

    alone, three, before_the_third, again = asyncio.run(scenario())

    # Then the click at rest is written at once, not a minute later, and so are the three
    # (as many as the batch before had, the first of them): two commits
    assert alone == URLS[0]
    assert three == [URLS[0]] * 3
    # And the two coming back wait for a third, the last batch's size, then share its commit
    assert before_the_third == 2
    assert again == [URLS[1]] * 3
    assert len(commits) == 3


def test_a_link_the_message_does_not_have_records_nothing(engine: Engine) -> None:
    (message,) = sent_messages(engine, unique("j"), 1)

    answers = together(writer(engine), [ClickToken(message, 7), ClickToken(10**12, 0)])

    assert [getattr(a, "name", a) for a in answers] == ["UNKNOWN", "UNKNOWN"]
    assert clicks_of(engine, [message]) == {}


def counted(session: Session, journey: str) -> tuple[int, int]:
    """The journey's clicks and clickers in its summary row, once checked against a
    recount."""
    (row,) = counts.read(session, journey)
    assert recounts.recount(session)[(journey, "update", "")] == row.figures
    return row.figures.clicks, row.figures.clickers


def _messages(parameters: Any) -> set[int]:
    """The emails of an INSERT of clicks: its batch comes as one JSON parameter, a list of
    rows, each starting with its message's id (engine/store/clicks.py)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters
    batches = [json.loads(v) for v in values if isinstance(v, str) and v.startswith("[[")]
    return {row[0] for batch in batches for row in batch}


def test_batches_are_written_on_the_writers_own_connection(engine: Engine) -> None:
    # Given a writer, and three clicks arriving one after the other (three batches)
    messages = sent_messages(engine, unique("j"), 3)
    recorder = writer(engine)
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *_: checkouts.append(1))

    async def scenario() -> list[str | object]:
        recorder.start()
        try:
            return [await recorder.follow(ClickToken(m, 0)) for m in messages]
        finally:
            await recorder.stop()

    # When they are recorded
    answers = asyncio.run(scenario())

    # Then the three batches took one connection from the pool, not one each (each
    # checkout is a round trip to check the connection, pool_pre_ping)
    assert answers == [URLS[0]] * 3
    assert len(checkouts) == 1
    assert clicks_of(engine, messages) == dict.fromkeys(messages, 1)


def test_a_lost_connection_is_replaced_and_the_click_still_stored(
    postgresql_scratch_url: str,
) -> None:
    # Given a writer that has recorded a click on its connection (PostgreSQL, which can end
    # a connection from the server's side)
    engine = make_engine(postgresql_scratch_url)
    first, second = sent_messages(engine, unique("j"), 2)
    recorder = writer(engine)
    backends: list[int] = []
    event.listen(engine, "checkout", lambda dbapi, *_: backends.append(dbapi.info.backend_pid))

    async def scenario() -> tuple[object, object]:
        recorder.start()
        try:
            before = await recorder.follow(ClickToken(first, 0))
            # When the database ends that connection (a restart, an administrator)
            with engine.connect() as admin:
                admin.execute(select(func.pg_terminate_backend(backends[0])))
            # and the next click comes
            return before, await recorder.follow(ClickToken(second, 1))
        finally:
            await recorder.stop()

    try:
        before, after = asyncio.run(scenario())

        # Then the next click is stored all the same, on a new connection
        assert (before, after) == (URLS[0], URLS[1])
        assert clicks_of(engine, [first, second]) == {first: 1, second: 1}
    finally:
        engine.dispose()


def test_the_writer_does_its_waiting_work_while_a_batch_is_written(engine: Engine) -> None:
    # Given a writer whose waiting work (the access lines) notes what it saw: whether clicks
    # were being written, how many batches had read their messages, and where it ran
    messages = sent_messages(engine, unique("j"), 2)
    seen: list[tuple[bool, int, bool]] = []
    reads: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and not holds(statement):
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    recorder = ClickWriter(
        engine,
        clock=lambda: LATER,
        secret="s",
        donation_url=None,
        burst=timedelta(seconds=10),
        wait_s=0,
        meanwhile=lambda: seen.append(
            (recorder.busy, len(reads), threading.current_thread() is threading.main_thread())
        ),
    )

    async def scenario() -> None:
        recorder.start()
        try:
            for m in messages:
                await recorder.follow(ClickToken(m, 0))
        finally:
            await recorder.stop()

    # When two batches are written
    try:
        asyncio.run(scenario())
    finally:
        event.remove(engine, "before_cursor_execute", note)

    # Then it ran in the event loop once for each, after the batch had started (its reads
    # done: the thread had the interpreter; the first batch also read the version's links)
    # and before it was answered
    assert seen == [(True, 2, True), (True, 3, True)]


def holds(statement: str) -> bool:
    """The batch's lock on its emails (PostgreSQL, engine.store.clicks.messages), no read."""
    return "pg_advisory_xact_lock" in statement


def test_first_clicks_on_emails_of_a_known_version_cost_one_read(engine: Engine) -> None:
    # Given twenty sent emails of one template version, one of them clicked already (the
    # version's links read then)
    messages = sent_messages(engine, unique("j"), 20)
    recorder = writer(engine)
    reads: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith(("SELECT", "WITH")) and "INSERT" not in statement:
            if not holds(statement):
                reads.append(statement)

    async def scenario() -> list[str | object]:
        recorder.start()
        try:
            await recorder.follow(ClickToken(messages[0], 0))
            event.listen(engine, "before_cursor_execute", note)
            # When the nineteen others are clicked for the first time, together
            return list(
                await asyncio.gather(*(recorder.follow(ClickToken(m, 0)) for m in messages[1:]))
            )
        finally:
            event.remove(engine, "before_cursor_execute", note)
            await recorder.stop()

    answers = asyncio.run(scenario())

    # Then their batch read its messages once (who each went to, its version, the scanner
    # rule's window), not each message's links as well
    assert answers == [URLS[0]] * 19
    assert len(reads) == 1
    assert clicks_of(engine, messages) == dict.fromkeys(messages, 1)
