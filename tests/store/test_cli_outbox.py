"""`mobilise tick` dispatches, `mobilise outbox status | approve`, and the scheduler's jobs.

Given the seed campaign in a project folder with its own SQLite database, when a signer
is ticked in, then the thank-you is written as an `.eml`; when the dispatcher finds a step
days overdue, it is held until `mobilise outbox approve`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.cli import app
from engine.config import get_settings
from engine.periodic import Passes
from engine.scheduler import scheduler
from engine.store.db import make_engine, make_sessionmaker
from engine.store.enrolments import Summary
from engine.store.models import OutboxMessage
from tests.conftest import BACKENDS
from tests.store.cli_helpers import SIGNED, project_session, runner, signed_up
from tests.store.dispatch_helpers import queue_step


@pytest.fixture
def signed(project: Path) -> Path:
    """The project's database holds the seed campaign and one signer, Alice."""
    signed_up(project, {"alice": (True, True)})
    return project


def test_tick_sends_and_a_far_overdue_step_waits_for_approval(signed: Path) -> None:
    ticked = runner.invoke(app, ["tick", "--now", SIGNED.isoformat()])
    assert ticked.exit_code == 0, ticked.output
    assert "  sent      1" in ticked.output
    assert len(list((signed / "var" / "outbox").glob("*.eml"))) == 1

    # given an update queued for a day the server was down
    with project_session() as session:
        update = queue_step(session, "alice", "update", due_at=SIGNED + timedelta(days=7))
    late = SIGNED + timedelta(days=10)
    held = runner.invoke(app, ["tick", "--now", late.isoformat()])
    status = runner.invoke(app, ["outbox", "status"])
    approved = runner.invoke(app, ["outbox", "approve", "--step", "update"])

    assert "held      1 overdue" in held.output
    assert "update" in status.output
    assert "held" in status.output
    assert approved.output.strip() == "approved 1 held message(s)"
    with project_session() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.id == update)).one()
        assert (row.status, row.reason) == ("queued", "approved")


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_an_approval_in_virtual_time_is_sent_by_the_next_tick_at_that_time(signed: Path) -> None:
    # given an update held at a virtual instant far from the wall clock
    ticked = runner.invoke(app, ["tick", "--now", SIGNED.isoformat()])
    assert "  sent      1" in ticked.output, ticked.output
    with project_session() as session:
        update = queue_step(session, "alice", "update", due_at=SIGNED + timedelta(days=7))
    late = (SIGNED + timedelta(days=10)).isoformat()
    held = runner.invoke(app, ["tick", "--now", late])
    assert "held      1 overdue" in held.output, held.output
    # when it is approved at that instant, then ticked at that instant
    approved = runner.invoke(app, ["outbox", "approve", "--step", "update", "--now", late])
    sent = runner.invoke(app, ["tick", "--now", late])
    # then it is due then, and that tick sends it instead of holding it again
    assert approved.output.strip() == "approved 1 held message(s)", approved.output
    assert "held" not in sent.output
    assert "  sent      1" in sent.output, sent.output
    with project_session() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.id == update)).one()
        assert row.status == "sent"


def test_a_now_that_is_not_an_instant_is_refused_with_a_hint(project: Path) -> None:
    refused = runner.invoke(app, ["outbox", "approve", "--now", "next tuesday"])
    assert refused.exit_code == 1
    assert "--now: 'next tuesday' is not an ISO 8601 instant" in refused.output


def test_the_scheduler_runs_the_journey_and_dispatch_passes(signed: Path) -> None:
    engine = make_engine(get_settings().database_url)
    passes = Passes(get_settings(), make_sessionmaker(engine), worker_id="test")
    jobs = scheduler(passes, blocking=False).jobs

    assert sorted(job.id for job in jobs.get_jobs()) == ["dispatch", "journeys", "retention"]
    summary, report = passes.tick(SIGNED)
    assert isinstance(summary, Summary)
    assert summary.enrolled == {"stop-reconnaissance-faciale": 1}
    assert report.outcomes == {"sent": 1}
    engine.dispose()
