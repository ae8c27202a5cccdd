"""`mobilise tick`: one deterministic pass of every periodic job at a given instant."""

from __future__ import annotations

import typer

from engine.cli import outbox
from engine.cli.common import Now, parse_now, reports_errors, sessions, settings
from engine.cli.declared import load
from engine.errors import Invalid
from engine.periodic import Passes, Skipped, journeys_pass


@reports_errors
def tick(now: Now = None) -> None:
    """Run one deterministic pass of every periodic job (journeys, dispatch) at that instant."""
    moment = parse_now(now)
    declared = load(settings().project_dir)
    if declared.problems:
        raise Invalid(
            "the declared files have problems",
            problems=declared.problems,
            hint="run `mobilise validate`",
        )
    with sessions() as factory:
        retained = Passes(settings(), factory).retention(moment)
        summary = journeys_pass(
            factory,
            now=moment,
            segments=declared.conditions,
            connections=settings().advance_connections,
        )
    typer.echo(f"tick at {moment.isoformat()}")
    if isinstance(retained, Skipped):
        typer.echo("  retention: running in another process, not run here")
    elif retained.anonymised:
        typer.echo(f"  anonymised {retained.anonymised} (retention period over)")
    for journey_id, count in sorted(summary.enrolled.items()):
        typer.echo(f"  enrolled  {journey_id}: {count}")
    for (journey_id, step_id), count in sorted(summary.queued.items()):
        typer.echo(f"  queued    {journey_id}/{step_id}: {count}")
    for reason, count in sorted(summary.exited.items()):
        typer.echo(f"  exited    {reason}: {count}")
    typer.echo(f"  moved     {summary.moved}")
    outbox.print_report(outbox.dispatch_now(moment))
