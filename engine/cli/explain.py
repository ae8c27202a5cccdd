"""`mobilise explain`: one supporter's timeline, and why any email was skipped."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import typer

from engine.cli.common import reports_errors, settings, transaction
from engine.store import timeline as timelines


@reports_errors
def explain(email: str = typer.Argument(..., help="The supporter's email address.")) -> None:
    """The supporter's timeline: events, journey steps, emails, and why any was skipped."""
    zone = ZoneInfo(settings().timezone)
    with transaction() as session:
        person = timelines.find_supporter(session, email.strip().lower())
        if person is None:
            typer.echo(f"no supporter with the address {email}", err=True)
            raise typer.Exit(1)
        entries = timelines.timeline(session, person.id)
    typer.echo(f"{email} (supporter {person.id}), times in {zone.key}")
    for entry in entries:
        local = entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        why = f" — {entry.detail}" if entry.detail else ""
        typer.echo(f"{local}  {entry.what}{why}")
