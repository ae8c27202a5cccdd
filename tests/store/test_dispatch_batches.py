"""Batch after batch: each batch's results ride in the transaction claiming the next one.

Given signers sent in batches of one, when the pass runs, then every row ends sent with
one commit a batch fewer than claims + results; and when claiming the next batch fails,
the results of the batch already sent are still written before the error goes up.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from engine import heap
from engine.send.dispatcher import Policy, dispatch
from engine.send.transport import MemoryTransport, OutgoingMessage, SendResult
from engine.store import claims
from engine.store.models import Milestone, OutboxMessage
from engine.store.passes import tick
from tests.store.dispatch_helpers import ENVELOPE, LIBRARY, nested, queue_step, run
from tests.store.journey_helpers import seed, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
ONE_BY_ONE = Policy(envelope=ENVELOPE, batch_size=1)


def signed(session: Session, *names: str) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {name: (True, True) for name in names})
    tick(session, now=SIGNED, segments=declared.conditions)


def statuses(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))


def test_three_batches_take_one_transaction_each_plus_the_last_two_results(
    session: Session,
) -> None:
    signed(session, "alice", "bob", "carol")
    opened = 0
    factory = nested(session)

    def counting() -> AbstractContextManager[Session]:
        nonlocal opened
        opened += 1
        return factory()

    report = dispatch(
        counting,
        transport=MemoryTransport(),
        library=LIBRARY,
        policy=ONE_BY_ONE,
        now=SIGNED,
        worker_id="w1",
        jitter=lambda: 0.5,
    )

    assert report.outcomes == {"sent": 3}
    assert statuses(session) == ["sent"] * 3
    # recovery, links once, three claims (each carrying the results of the batch before
    # the one in flight), the empty claim carrying the second batch's results, and the
    # last batch's results once it landed: 1 + 1 + 3 + 1 + 1
    assert opened == 7


def test_a_failed_claim_still_records_the_batch_already_sent(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two signers sent one per batch, when claiming the second batch fails
    signed(session, "alice", "bob")
    real_claim = claims.claim
    calls = 0

    def failing_second(*args: object, **kwargs: object) -> list[claims.Claimed]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("database went away")
        return real_claim(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(claims, "claim", failing_second)
    transport = MemoryTransport()
    with pytest.raises(RuntimeError):
        run(session, transport, SIGNED, policy=ONE_BY_ONE)
    # Then the first email, which left, is recorded sent; the other is still queued
    assert len(transport.sent) == 1
    assert sorted(statuses(session)) == ["queued", "sent"]


def test_a_process_shutting_down_ends_the_pass_after_the_batch_in_hand(
    session: Session,
) -> None:
    # given three queued thank-yous, sent one a batch
    signed(session, "alice", "bob", "carol")
    transport = MemoryTransport()

    # when the process is asked to stop once the first batch is taken
    asked: list[bool] = []

    def after_the_first_batch() -> bool:
        asked.append(True)
        return len(asked) > 1

    report = dispatch(
        nested(session),
        transport=transport,
        library=LIBRARY,
        policy=ONE_BY_ONE,
        now=SIGNED,
        worker_id="w1",
        jitter=lambda: 0.5,
        stopping=after_the_first_batch,
    )

    # then that batch's result is stored and the rest stay queued for the next pass
    assert report.outcomes == {"sent": 1}
    assert sorted(statuses(session)) == ["queued", "queued", "sent"]


def test_the_next_batch_is_claimed_and_rendered_while_one_is_in_flight(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two signers sent one per batch, and a provider slow to answer
    signed(session, "alice", "bob")
    real_claim = claims.claim
    second_claimed = threading.Event()
    claims_made: list[int] = []

    def claim(*args: object, **kwargs: object) -> list[claims.Claimed]:
        rows = real_claim(*args, **kwargs)  # type: ignore[arg-type]
        claims_made.append(len(rows))
        if claims_made == [1, 1]:
            second_claimed.set()
        return rows

    monkeypatch.setattr(claims, "claim", claim)
    overlapped: list[bool] = []

    class Slow(MemoryTransport):
        def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
            if not overlapped:
                # The first request is still out when the second batch is claimed.
                overlapped.append(second_claimed.wait(timeout=10))
            return super().send(messages)

    # When the pass runs
    transport = Slow()
    report = run(session, transport, SIGNED, policy=ONE_BY_ONE)

    # Then the second batch was taken while the first was in flight, and both were sent
    assert overlapped == [True]
    assert report.outcomes == {"sent": 2}
    assert statuses(session) == ["sent", "sent"]


def test_a_batch_in_flight_counts_towards_the_frequency_cap(session: Session) -> None:
    # Given alice's update and first ask due at once, sent one per batch: the update is
    # still in flight (not yet recorded sent) when the ask is looked at
    signed(session, "alice")
    update_ = queue_step(session, "alice", "update", due_at=SIGNED)
    ask = queue_step(session, "alice", "ask-first", due_at=SIGNED)
    session.execute(
        update(Milestone).where(Milestone.threshold == 140_000).values(reached_at=SIGNED)
    )

    # When the pass runs
    run(session, MemoryTransport(), SIGNED + timedelta(minutes=1), policy=ONE_BY_ONE)

    # Then only one campaign email leaves: the cap defers the other by its period
    session.expire_all()
    rows = {
        r.id: (r.status, r.reason)
        for r in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_([update_, ask])))
    }
    assert sorted(rows.values()) == [("queued", "frequency-cap"), ("sent", None)]


def test_a_batch_sent_but_not_yet_recorded_counts_towards_the_frequency_cap(
    session: Session,
) -> None:
    # Given three campaign emails of alice due at once, sent one per batch: when the third
    # is looked at, the first was sent and its result waits to be recorded after that look
    signed(session, "alice")
    ids = [
        queue_step(session, "alice", "update", due_at=SIGNED),
        queue_step(session, "alice", "ask-first", due_at=SIGNED),
        queue_step(session, "alice", "extra", due_at=SIGNED, template="update"),
    ]
    session.execute(
        update(Milestone).where(Milestone.threshold == 140_000).values(reached_at=SIGNED)
    )

    # When the pass runs
    run(session, MemoryTransport(), SIGNED + timedelta(minutes=1), policy=ONE_BY_ONE)

    # Then one campaign email leaves, and the cap defers both others
    session.expire_all()
    found = session.execute(
        select(OutboxMessage.status, OutboxMessage.reason).where(OutboxMessage.id.in_(ids))
    ).all()
    assert sorted((s, r) for s, r in found) == [
        ("queued", "frequency-cap"),
        ("queued", "frequency-cap"),
        ("sent", None),
    ]


def test_a_pass_sends_at_the_batch_pace_of_the_collector(session: Session) -> None:
    # Given two thank-yous queued
    signed(session, "alice", "bob")
    paces: list[tuple[int, int, int]] = []

    class Watching(MemoryTransport):
        def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
            paces.append(gc.get_threshold())
            return super().send(messages)

    # When the pass runs
    before = gc.get_threshold()
    run(session, Watching(), SIGNED, policy=ONE_BY_ONE)

    # Then its batches were rendered and sent at the batch pace (engine.heap: the
    # collector would otherwise rescan each live batch again and again), and the
    # process's own pace came back after it
    assert paces == [heap.BATCH_PACE, heap.BATCH_PACE]
    assert gc.get_threshold() == before


def test_a_batchs_sent_rows_are_counted_last_in_the_transaction_that_records_them(
    session: Session,
) -> None:
    # Given three thank-yous sent one per batch: each batch's results are recorded in the
    # transaction that claims the next one
    signed(session, "alice", "bob", "chloe")
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.strip().split()[0].upper() + " " + statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        # When the pass runs
        run(session, MemoryTransport(), SIGNED, policy=ONE_BY_ONE)
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    # Then every count of sent emails into the steps' summary rows is the last statement
    # before its transaction ends: a row every worker counts into stays locked from there
    # to the commit only, not through the claim and the look of the next batch
    counted = [i for i, s in enumerate(statements) if "INTO step_counts" in s]
    assert counted
    for i in counted:
        assert statements[i + 1].startswith("RELEASE "), statements[i + 1][:80]
