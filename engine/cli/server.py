from __future__ import annotations

import logging
import os
from typing import Any

import typer
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from engine.cli import processes
from engine.cli.common import reports_errors, sessions, settings, transaction
from engine.config import Settings, get_settings
from engine.errors import Invalid
from engine.periodic import Passes
from engine.scheduler import scheduler
from engine.send.identity import for_sending
from engine.store import petitions
from engine.track import sendgrid_events

APP = "engine.api.app:create_default_app"


def banner(config: Settings, *, host: str, port: int, slugs: list[str]) -> str:
    """Where to go once the server is up: the petition page, the dashboard, a staff key."""
    local = f"http://{host}:{port}"
    pages = ", ".join(f"{local}/p/{slug}" for slug in slugs) or (
        "none yet: declare one in journeys/ and run `mobilise sync`"
    )
    lines = [
        f"Mobilise is serving on {local} (Ctrl+C stops it)",
        f"  petition page  {local}/   ({pages})",
        f"  dashboard      {local}/dashboard",
        "  staff key      `mobilise apikey create --role admin` prints one to sign in with",
    ]
    if config.base_url.rstrip("/") != local:
        lines.append(f"  public address {config.base_url} (MOBILISE_BASE_URL, used in emails)")
    if config.transport == "file":
        lines.append(f"  emails         written as .eml files under {config.outbox_dir}/")
    return "\n".join(lines)


def _slugs() -> list[str]:
    try:
        with transaction() as session:
            return [p.slug for p in petitions.read_all(session)]
    except SQLAlchemyError:  # not migrated yet: the server says so on its first request
        return []


@reports_errors
def run(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="Server processes (use several on PostgreSQL)."),
    no_scheduler: bool = typer.Option(False, "--no-scheduler", help="Serve the API alone."),
) -> None:
    """Serve the API and dashboard (and the scheduler unless --no-scheduler)."""
    if workers > 1 and port == 0:
        # Each process listens on the port given: port 0 would give each one of its own.
        raise Invalid(
            f"0 with --workers {workers}: each server process would listen on a port of its own",
            field="--port",
            hint="give the port to share, e.g. --port 8000",
        )
    config = settings()
    # Refused here with a clear message rather than in each server process's traceback.
    sendgrid_events.check_public_key(config.sendgrid_webhook_public_key)
    for_sending(config)  # production refuses placeholders before anything starts
    typer.echo(banner(config, host=host, port=port, slugs=_slugs()))
    # Read by every server process's lifespan (engine/api/app.py).
    os.environ["MOBILISE_SCHEDULER"] = "0" if no_scheduler else "1"
    get_settings.cache_clear()
    options: dict[str, Any] = {
        "factory": True,
        "log_level": "warning",
        "access_log": False,  # engine/api/accesslog.py writes one without addresses or tokens
        # No `Server: uvicorn` on every answer: it tells a scanner what runs here, and its
        # bytes and checks cost each click redirect (bench/README.md).
        "server_header": False,
        "loop": "uvloop",
        "http": "httptools",
    }
    if workers > 1:
        processes.serve(APP, host=host, port=port, workers=workers, **options)
    else:
        uvicorn.run(APP, host=host, port=port, **options)


@reports_errors
def worker() -> None:
    """Run the periodic passes alone (start several on PostgreSQL)."""
    for_sending(settings())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with sessions() as factory:
        jobs = scheduler(Passes(settings(), factory), blocking=True).jobs
        try:
            jobs.start()
        except (KeyboardInterrupt, SystemExit):
            pass
