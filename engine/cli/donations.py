"""`mobilise import donations`: gifts from a payment platform's CSV export."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import Now, parse_now, reports_errors, sessions, settings
from engine.intake import gifts


@reports_errors
def import_donations(
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
    with sessions() as factory:
        report = gifts.import_donations(
            factory,
            path=file,
            now=lambda: parse_now(now),
            zone=ZoneInfo(config.timezone),
            secret=config.secret_key,
            window=config.attribution_window,
            rejects_path=rejects,
        )
    typer.echo(report.summary())
