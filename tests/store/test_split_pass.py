"""The journey pass split by supporter over several transactions at once (PostgreSQL).

Given the same signers and the same pass instants, when the scheduler's journey pass runs
on one connection and on three, then the outbox and the enrolments come out the same, and
a shard's transaction only ever touches its own supporters.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.periodic import journeys_pass
from engine.rules.conditions import Condition
from engine.store import donations, migrate, milestones, passes, virtual
from engine.store.db import make_engine, make_sessionmaker
from engine.store.donations import DonationRow
from engine.store.models import Enrolment, OutboxMessage, Supporter
from engine.store.shards import shards
from tests.backends import fresh_postgres_database
from tests.store.journey_helpers import seed, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
MILESTONE = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
PEOPLE = {f"p{i:02d}": (i % 3 != 0, i % 4 != 0) for i in range(24)}
DONORS = ("p01", "p06", "p11")  # gave before signing: the additional-gift ask
CONVERTS = ("p02", "p09")  # give during the pause: leave as converted

Snapshot = tuple[list[tuple[object, ...]], list[tuple[object, ...]]]


NewDatabase = Callable[[], AbstractContextManager[sessionmaker[Session]]]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> NewDatabase:
    """Opens a new empty database of the backend, for passes that commit."""

    @contextmanager
    def opened() -> Iterator[sessionmaker[Session]]:
        with ExitStack() as stack:
            if request.param == "sqlite":
                url = f"sqlite:///{tmp_path / f'split-{secrets.token_hex(4)}.db'}"
            else:
                url = stack.enter_context(fresh_postgres_database())
            migrate.upgrade(url)
            engine = make_engine(url)
            stack.callback(engine.dispose)
            yield make_sessionmaker(engine)

    return opened


def given_signers(sessions: sessionmaker[Session]) -> tuple[dict[str, Condition], int]:
    """The seed campaign, 24 signers with mixed consents, three of them donors already."""
    with sessions.begin() as session:
        declared, petition_id = seed(session, SIGNED - timedelta(days=1))
        sign(session, petition_id, SIGNED, PEOPLE)
        donations.record(
            session,
            [
                DonationRow(
                    f"{n}@example.org", 2000, "EUR", SIGNED - timedelta(days=60), "one-off", n
                )
                for n in DONORS
            ],
            now=SIGNED,
        )
    return declared.conditions, petition_id


def walk(sessions: sessionmaker[Session], connections: int) -> Snapshot:
    """The seed journey from the signatures to the donation asks, pass by pass."""
    named, petition_id = given_signers(sessions)

    def run(now: datetime) -> None:
        """A pass at `now`, after a dispatcher on time sent what was due."""
        with sessions.begin() as session:
            virtual.send_due(session, now=now)
        journeys_pass(sessions, now=now, segments=named, connections=connections)

    run(SIGNED)
    with sessions.begin() as session:
        milestones.check(session, petition_id=petition_id, count=140000, now=MILESTONE)
    run(MILESTONE)
    gave = MILESTONE + timedelta(days=1)
    with sessions.begin() as session:
        donations.record(
            session,
            [
                DonationRow(f"{n}@example.org", 1500, "EUR", gave, "one-off", f"g-{n}")
                for n in CONVERTS
            ],
            now=gave,
        )
    run(gave + timedelta(hours=1))
    run(MILESTONE + timedelta(days=3))
    run(MILESTONE + timedelta(days=3))  # a replay changes nothing
    return snapshot(sessions)


def snapshot(sessions: sessionmaker[Session]) -> Snapshot:
    with sessions() as session:
        emails = (
            select(Supporter.email, OutboxMessage.step_id, OutboxMessage.template)
            .add_columns(OutboxMessage.status, OutboxMessage.reason, OutboxMessage.due_at)
            .join(Supporter, Supporter.id == OutboxMessage.supporter_id)
            .order_by(Supporter.email, OutboxMessage.step_id)
        )
        walks = (
            select(Supporter.email, Enrolment.state, Enrolment.step_id, Enrolment.exit_reason)
            .join(Supporter, Supporter.id == Enrolment.supporter_id)
            .order_by(Supporter.email)
        )
        return (
            [tuple(r) for r in session.execute(emails)],
            [tuple(r) for r in session.execute(walks)],
        )


def test_a_pass_split_over_three_connections_does_what_one_transaction_does(
    new_database: NewDatabase,
) -> None:
    with new_database() as sessions:
        split = walk(sessions, connections=3)
    with new_database() as sessions:
        whole = walk(sessions, connections=1)

    assert split == whole
    emails, walks = split
    steps = {(e, s) for e, s, *_ in emails}
    assert ("p01@example.org", "ask-additional") in steps
    assert ("p04@example.org", "ask-first") in steps
    assert ("p02@example.org", "ask-first") not in steps
    assert sum(1 for e, s, *_ in emails if s == "thanked") == len(PEOPLE)
    assert {w[1:] for w in walks if w[0] == "p09@example.org"} == {("exited", "pause", "converted")}


def test_a_shard_moves_only_its_own_supporters(session: Session) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, PEOPLE)
    named = declared.conditions
    passes.enrol(session, now=SIGNED, segments=named)

    first, second = shards(session, 2)
    assert first.high is not None
    lower = passes.advance(session, now=SIGNED, segments=named, shard=first)
    thanked = session.scalars(select(OutboxMessage.supporter_id)).all()

    assert lower.queued == {("stop-reconnaissance-faciale", "thanked"): len(PEOPLE) // 2}
    assert len(thanked) == len(PEOPLE) // 2
    assert all(sid <= first.high for sid in thanked)
    upper = passes.advance(session, now=SIGNED, segments=named, shard=second)
    assert upper.queued == {("stop-reconnaissance-faciale", "thanked"): len(PEOPLE) // 2}
    assert passes.advance(session, now=SIGNED, segments=named).changed == 0
