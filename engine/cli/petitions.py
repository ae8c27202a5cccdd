from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from engine.cli.common import reports_errors, sessions, settings
from engine.intake.definitions import campaign_paths, load_campaigns
from engine.intake.imports import import_signatures
from engine.store import petitions

import_app = typer.Typer(no_args_is_help=True, help="Import signatures and donations from CSV.")


def utcnow() -> datetime:
    return datetime.now(UTC)


@reports_errors
def sync() -> None:
    """Load journeys/, segments/ and templates/email/ into the database as new versions."""
    project = settings().project_dir.resolve()
    campaigns = load_campaigns(campaign_paths(project), relative_to=project)
    with sessions() as factory, factory.begin() as session:
        for loaded in campaigns:
            petition = petitions.upsert(session, loaded.campaign.petition, now=utcnow())
            typer.echo(f"petition {petition.slug}: {petition.signature_count} signatures")


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
        )
    typer.echo(report.summary())
