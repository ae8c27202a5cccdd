"""`mobilise sync`: the declared petitions and journeys into the database, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from engine.cli.common import reports_errors, sessions, settings
from engine.cli.declared import checked, exit_on_problems, print_warnings
from engine.cli.progress import bars
from engine.intake import campaign_sync


def utcnow() -> datetime:
    return datetime.now(UTC)


@reports_errors
def sync() -> None:
    """Load journeys/, segments/ and templates/email/ into the database as new versions.

    Everything is validated first (as `mobilise validate`): nothing invalid is stored,
    and all of it is stored in one transaction or none."""
    with bars() as progress:
        progress.phase("Checking the declared files", 1)
        declared = checked(settings().project_dir)
        progress.advance(1)
        print_warnings(declared.warnings)
        exit_on_problems(declared.problems)
        now = utcnow()
        with sessions() as factory, factory.begin() as session:
            stored, synced = campaign_sync.store(
                session, declared.campaigns, now=now, progress=progress
            )
    for petition in stored:
        typer.echo(f"petition {petition.slug}: {petition.signature_count} signatures")
    for result in synced:
        state = "new version" if result.created else "unchanged"
        typer.echo(f"journey {result.journey_id}: version {result.version} ({state})")
