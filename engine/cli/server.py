from __future__ import annotations

import typer
import uvicorn

from engine.cli.common import settings


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
    typer.echo("error: the scheduler arrives with the journey engine", err=True)
    raise typer.Exit(1)
