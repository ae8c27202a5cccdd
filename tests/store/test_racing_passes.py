"""Two journey passes racing on PostgreSQL (two API processes, each woken by signatures).

Given a new signer and a pass that has enrolled them but not yet committed, when a second
pass enrols at the same moment (its statement waits on the first one's row), then once the
first commits the second skips the signer instead of failing, and the signer is enrolled
and thanked once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.store import migrate, passes
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Enrolment
from engine.store.summary import Summary
from tests.backends import fresh_postgres_database
from tests.store.journey_helpers import seed, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            yield make_sessionmaker(engine)
        finally:
            engine.dispose()


def waiting_on_a_lock(sessions: sessionmaker[Session], pid: int) -> bool:
    with sessions() as session:
        kind = session.scalar(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return bool(kind == "Lock")


def test_a_pass_racing_another_skips_the_signer_the_other_enrolled(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        declared, petition_id = seed(session, SIGNED - timedelta(days=1))
        sign(session, petition_id, SIGNED, {"zoe": (True, True)})
    named = declared.conditions

    first = sessions()
    first.begin()
    assert passes.enrol(first, now=SIGNED, segments=named).enrolled == {
        "stop-reconnaissance-faciale": 1
    }

    outcome: list[Summary | BaseException] = []
    second_pid: list[int] = []
    started = threading.Event()

    def second_pass() -> None:
        try:
            with sessions.begin() as session:
                second_pid.append(session.scalar(text("SELECT pg_backend_pid()")) or 0)
                started.set()
                outcome.append(passes.tick(session, now=SIGNED, segments=named))
        except BaseException as exc:
            outcome.append(exc)

    racer = threading.Thread(target=second_pass, daemon=True)
    racer.start()
    assert started.wait(timeout=10)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not waiting_on_a_lock(sessions, second_pid[0]):
        assert datetime.now(UTC) < deadline, "the second pass never reached the first's row"
        threading.Event().wait(0.01)

    first.commit()
    first.close()
    racer.join(timeout=10)

    [summary] = outcome
    assert isinstance(summary, Summary), summary
    assert summary.enrolled == {}
    assert summary.queued == {("stop-reconnaissance-faciale", "thanked"): 1}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Enrolment)) == 1
