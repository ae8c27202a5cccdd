"""`mobilise run` serves the API with the scheduler in the same process, or without it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.config import Settings
from engine.store import migrate
from tests.store.journey_helpers import ROOT


def settings(tmp_path: Path, *, scheduler: bool) -> Settings:
    url = f"sqlite:///{tmp_path / 'mobilise.db'}"
    migrate.upgrade(url)
    return Settings(database_url=url, project_dir=ROOT, transport="memory", scheduler=scheduler)


def test_the_api_process_runs_the_passes_when_asked(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, scheduler=True))

    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        jobs = app.state.scheduler
        assert jobs.running
        assert sorted(job.id for job in jobs.get_jobs()) == ["dispatch", "journeys"]
    assert not jobs.running


def test_no_scheduler_serves_the_api_alone(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, scheduler=False))

    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert app.state.scheduler is None
