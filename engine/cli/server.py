from __future__ import annotations

import logging
import os

import typer
import uvicorn

from engine.cli.common import sessions, settings
from engine.config import get_settings
from engine.scheduler import Passes, scheduler


def run(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="Server processes (use several on PostgreSQL)."),
    no_scheduler: bool = typer.Option(False, "--no-scheduler", help="Serve the API alone."),
) -> None:
    """Serve the API and dashboard (and the scheduler unless --no-scheduler)."""
    config = settings()
    if config.env == "production" and config.secret_key.startswith("dev-only"):
        typer.echo("error: set MOBILISE_SECRET_KEY in production", err=True)
        raise typer.Exit(1)
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
        loop="uvloop",
        http="httptools",
    )


def worker() -> None:
    """Run the periodic passes alone (start several on PostgreSQL)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with sessions() as factory:
        jobs = scheduler(Passes(settings(), factory), blocking=True).jobs
        try:
            jobs.start()
        except (KeyboardInterrupt, SystemExit):
            pass
