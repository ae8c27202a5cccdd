from __future__ import annotations

import logging
import os

import typer
import uvicorn

from engine.cli.common import reports_errors, sessions, settings
from engine.config import get_settings
from engine.scheduler import Passes, scheduler
from engine.track import sendgrid_events


@reports_errors
def run(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="Server processes (use several on PostgreSQL)."),
    no_scheduler: bool = typer.Option(False, "--no-scheduler", help="Serve the API alone."),
) -> None:
    """Serve the API and dashboard (and the scheduler unless --no-scheduler)."""
    # Refused here with a clear message rather than in each server process's traceback.
    sendgrid_events.check_public_key(settings().sendgrid_webhook_public_key)
    # Read by every server process's lifespan (engine/api/app.py).
    os.environ["MOBILISE_SCHEDULER"] = "0" if no_scheduler else "1"
    get_settings.cache_clear()
    uvicorn.run(
        "engine.api.app:create_default_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # engine/api/accesslog.py writes one without addresses or tokens
        loop="uvloop",
        http="httptools",
    )


@reports_errors
def worker() -> None:
    """Run the periodic passes alone (start several on PostgreSQL)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with sessions() as factory:
        jobs = scheduler(Passes(settings(), factory), blocking=True).jobs
        try:
            jobs.start()
        except (KeyboardInterrupt, SystemExit):
            pass
