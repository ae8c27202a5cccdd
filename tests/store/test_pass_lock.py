"""One process at a time runs the journey pass, and the retention pass (PostgreSQL: an
advisory lock per pass).

Given another process running the journey pass (a second connection holding its lock),
when this process's pass comes, then it skips and says so, and once the other ends it
runs. A signature whose wake falls while the pass runs elsewhere is not left for the next
interval: the skipped run tries again until one of its own gets through, and the signer is
thanked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.periodic import Passes, Skipped
from engine.scheduler import scheduler
from engine.send.transport import MemoryTransport
from engine.store import locks, migrate
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Enrolment
from engine.store.retention import RetentionReport
from engine.store.summary import Summary
from tests.backends import fresh_postgres_database
from tests.store.journey_helpers import ROOT, enrolment_of, seed, sign


@dataclass
class Campaign:
    passes: Passes
    petition_id: int

    def signs(self, name: str) -> None:
        with self.passes.sessions.begin() as session:
            sign(session, self.petition_id, datetime.now(UTC), {name: (True, True)})


@pytest.fixture
def campaign() -> Iterator[Campaign]:
    """The seed campaign on a fresh PostgreSQL database; passes run once an hour."""
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            _, petition_id = seed(session, datetime.now(UTC))
        settings = Settings(
            database_url=url,
            project_dir=ROOT,
            transport="memory",
            journeys_every_s=3600,
            dispatch_every_s=3600,
        )
        try:
            yield Campaign(
                Passes(settings, sessions, transport_override=MemoryTransport()), petition_id
            )
        finally:
            engine.dispose()


def another_process_running(sessions: sessionmaker[Session], name: str) -> Session:
    """A second connection that holds the pass's lock until it is closed."""
    other = sessions()
    other.begin()
    assert locks.try_hold(other, name)
    return other


def test_a_pass_running_elsewhere_is_skipped_and_runs_once_it_ends(campaign: Campaign) -> None:
    passes, sessions = campaign.passes, campaign.passes.sessions
    campaign.signs("zoe")

    # given another process running the journey pass
    other = another_process_running(sessions, "journeys")

    # when this process's pass comes, then it skips it and says so
    assert passes.journeys(datetime.now(UTC)) == Skipped("journeys")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Enrolment)) == 0

    # when the other pass ends, then the next run is this process's
    other.rollback()
    other.close()
    ran = passes.journeys(datetime.now(UTC))
    assert isinstance(ran, Summary)
    assert ran.enrolled == {"stop-reconnaissance-faciale": 1}
    with sessions() as session:
        assert enrolment_of(session, "zoe")[1] is not None


def test_the_retention_pass_running_elsewhere_is_skipped(campaign: Campaign) -> None:
    passes, sessions = campaign.passes, campaign.passes.sessions

    # given another process running the retention pass (both API processes schedule it)
    other = another_process_running(sessions, "retention")

    # when this process's comes, then it skips it and says so
    assert passes.retention(datetime.now(UTC)) == Skipped("retention")

    # and once the other ends, this process's next run is its own
    other.rollback()
    other.close()
    assert isinstance(passes.retention(datetime.now(UTC)), RetentionReport)


def test_a_wake_while_the_pass_runs_elsewhere_still_thanks_the_signer(
    campaign: Campaign,
) -> None:
    passes, sessions = campaign.passes, campaign.passes.sessions
    transport = passes.transport
    assert isinstance(transport, MemoryTransport)
    scheduled = scheduler(passes, blocking=False)
    skipped, thanked = threading.Event(), threading.Event()

    def after_a_run(event: JobExecutionEvent) -> None:
        if event.job_id == "journeys" and event.retval == Skipped("journeys"):
            skipped.set()
        if event.job_id == "dispatch" and transport.sent:
            thanked.set()

    scheduled.jobs.add_listener(after_a_run, EVENT_JOB_EXECUTED)

    # given another process running the journey pass, long enough to skip a run of ours
    other = another_process_running(sessions, "journeys")
    scheduled.jobs.start()
    try:
        assert skipped.wait(timeout=10), "the start-up pass ran beside the other process's"

        # when someone signs here and the signature wakes the pass, which is still taken
        skipped.clear()
        campaign.signs("zoe")
        scheduled.wake["journeys"]()
        assert skipped.wait(timeout=10), "the woken pass ran beside the other process's"
        assert not transport.sent

        # and the other process's pass then ends (having read the signers before Zoé)
        other.rollback()
        other.close()

        # then Zoé is thanked within seconds, not at the next interval (an hour)
        assert thanked.wait(timeout=15), "the wake was lost with the skipped run"
    finally:
        scheduled.jobs.shutdown()
    assert [m.to.email for m in transport.sent] == ["zoe@example.org"]
