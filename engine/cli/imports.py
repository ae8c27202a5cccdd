"""`mobilise import signatures | donations`: CSV files in, rejected rows out with their reason."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import Now, parse_now, reports_errors, sessions, settings
from engine.cli.progress import bars
from engine.cli.sync import utcnow
from engine.intake.gift_imports import import_donations
from engine.intake.signature_imports import import_signatures

import_app = typer.Typer(no_args_is_help=True, help="Import signatures or donations from CSV.")


@import_app.command("signatures")
@reports_errors
def signatures(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV file"),
    petition: str = typer.Option(..., "--petition", help="petition slug"),
    enrol: bool = typer.Option(False, "--enrol", help="imported signers enter journeys"),
    rejects: Path | None = typer.Option(
        None, help="where rejected rows go (default FILE.rejects.csv)"
    ),
) -> None:
    """Import signatures; rejected rows go to a CSV with line number and reason."""
    with sessions() as factory, bars() as progress:
        report = import_signatures(
            factory,
            slug=petition,
            path=file,
            now=utcnow,
            zone=ZoneInfo(settings().timezone),
            enrol=enrol,
            rejects_path=rejects,
            secret=settings().keys,
            progress=progress,
        )
    typer.echo(report.summary())


@import_app.command("donations")
@reports_errors
def donations(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV file"),
    rejects: Path | None = typer.Option(
        None, help="where rejected rows go (default FILE.rejects.csv)"
    ),
    now: Now = None,
) -> None:
    """Import gifts (one-off and monthly), de-duplicated by external id; rejected rows go
    to a CSV with line number and reason. Unknown givers become supporters without consent."""
    config = settings()
    parse_now(now)  # a bad --now is refused before the file is read
    with sessions() as factory, bars() as progress:
        report = import_donations(
            factory,
            path=file,
            now=lambda: parse_now(now),
            zone=ZoneInfo(config.timezone),
            secret=config.keys,
            window=config.attribution_window,
            rejects_path=rejects,
            progress=progress,
        )
    typer.echo(report.summary())
