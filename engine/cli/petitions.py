from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import reports_errors, sessions, settings
from engine.cli.journeys import checked, exit_on_problems
from engine.intake import definitions
from engine.intake.definitions import refuse_duplicate_petitions
from engine.intake.imports import import_signatures

import_app = typer.Typer(no_args_is_help=True, help="Import signatures from CSV.")


def utcnow() -> datetime:
    return datetime.now(UTC)


@reports_errors
def sync() -> None:
    """Load journeys/, segments/ and templates/email/ into the database as new versions.

    Everything is validated first (as `mobilise validate`): nothing invalid is stored,
    and all of it is stored in one transaction or none."""
    declared = checked(settings().project_dir)
    exit_on_problems(declared.problems)
    refuse_duplicate_petitions(declared.campaigns)
    now = utcnow()
    with sessions() as factory, factory.begin() as session:
        stored, synced = definitions.store(session, declared.campaigns, now=now)
        for petition in stored:
            typer.echo(f"petition {petition.slug}: {petition.signature_count} signatures")
        for result in synced:
            state = "new version" if result.created else "unchanged"
            typer.echo(f"journey {result.journey_id}: version {result.version} ({state})")


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
    with sessions() as factory:
        report = import_signatures(
            factory,
            slug=petition,
            path=file,
            now=utcnow,
            zone=ZoneInfo(settings().timezone),
            enrol=enrol,
            rejects_path=rejects,
            secret=settings().secret_key,
        )
    typer.echo(report.summary())
