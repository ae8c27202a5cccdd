"""`mobilise run` serves the API with the scheduler in the same process, or without it.

With the scheduler in the process, a signature wakes the journey pass, and a pass that
queued an email wakes the dispatch: the signer is thanked within seconds even when the
passes' intervals are an hour long."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.config import Settings
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker
from tests.store.journey_helpers import ROOT, SLUG, seed


def settings(tmp_path: Path, *, scheduler: bool, every_s: float = 60.0) -> Settings:
    url = f"sqlite:///{tmp_path / 'mobilise.db'}"
    migrate.upgrade(url)
    return Settings(
        database_url=url,
        project_dir=ROOT,
        transport="memory",
        scheduler=scheduler,
        journeys_every_s=every_s,
        dispatch_every_s=every_s,
    )


def synced(url: str) -> None:
    """`mobilise sync`: the seed petition and its journey."""
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        seed(session, datetime.now(UTC))
    engine.dispose()


def test_a_signer_is_thanked_within_seconds_not_at_the_next_interval(tmp_path: Path) -> None:
    # given passes that run at start-up, then only once an hour
    configured = settings(tmp_path, scheduler=True, every_s=3600)
    synced(configured.database_url)
    app = create_app(configured)
    sent, dispatched = threading.Event(), threading.Event()

    with TestClient(app) as client:
        transport = app.state.passes.transport

        def after_a_run(event: JobExecutionEvent) -> None:
            if event.job_id == "dispatch":
                dispatched.set()
                if transport.sent:
                    sent.set()

        app.state.scheduler.add_listener(after_a_run, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        assert dispatched.wait(timeout=10), "the start-up dispatch never ran"
        assert not transport.sent

        # when someone signs after the start-up passes
        answer = client.post(
            f"/api/petitions/{SLUG}/signatures",
            json={"email": "zoe@example.org", "first_name": "Zoé", "postal_code": "75011"},
        )
        assert answer.status_code in (200, 201, 202)

        # then the thank-you leaves within seconds, an hour before the next interval
        assert sent.wait(timeout=10), "the thank-you waited for the next interval"
    assert [m.to.email for m in transport.sent] == ["zoe@example.org"]


def test_the_api_process_runs_the_passes_when_asked(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, scheduler=True))

    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        jobs = app.state.scheduler
        assert jobs.running
        assert sorted(job.id for job in jobs.get_jobs()) == ["dispatch", "journeys", "retention"]
    assert not jobs.running


def test_no_scheduler_serves_the_api_alone(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, scheduler=False))

    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert app.state.scheduler is None
