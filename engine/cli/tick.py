"""`mobilise tick`: one deterministic pass of every periodic job at a given instant."""

from __future__ import annotations

import typer

from engine.cli import outbox
from engine.cli.common import Now, parse_now, reports_errors, sessions, settings
from engine.cli.declared import load
from engine.errors import Invalid
from engine.periodic import Passes, Skipped
from engine.store.retention import RetentionReport
from engine.store.summary import Summary


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
        passes = Passes(settings(), factory)
        retained = passes.retention(moment)
        # Under the pass's lock, as a scheduler runs it: a `mobilise run` or `mobilise
        # worker` up on the same PostgreSQL database may be running it now.
        summary = passes.journeys(moment, segments=declared.conditions)
    typer.echo(f"tick at {moment.isoformat()}")
    for skipped in (retained, summary):
        if isinstance(skipped, Skipped):
            typer.echo(f"  {skipped.name}: running in another process, not run here")
    if isinstance(retained, RetentionReport) and retained.anonymised:
        typer.echo(f"  anonymised {retained.anonymised} (retention period over)")
    if isinstance(summary, Summary):
        _print(summary)
    outbox.print_report(outbox.dispatch_now(moment))


def _print(summary: Summary) -> None:
    for journey_id, count in sorted(summary.enrolled.items()):
        typer.echo(f"  enrolled  {journey_id}: {count}")
    for (journey_id, step_id), count in sorted(summary.queued.items()):
        typer.echo(f"  queued    {journey_id}/{step_id}: {count}")
    for reason, count in sorted(summary.exited.items()):
        typer.echo(f"  exited    {reason}: {count}")
    typer.echo(f"  moved     {summary.moved}")
