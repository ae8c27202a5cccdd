"""`mobilise outbox status | approve` and the dispatch half of `mobilise tick`."""

from __future__ import annotations

from datetime import datetime

import typer

from engine.cli.common import Now, parse_now, reports_errors, sessions, settings, transaction
from engine.periodic import Passes
from engine.send import held
from engine.send.dispatcher import Report

app = typer.Typer(no_args_is_help=True, help="The outbox: what is queued, held, sent.")


def dispatch_now(now: datetime) -> Report:
    """One dispatch pass at `now` with the configured transport (what `tick` runs)."""
    with sessions() as factory:
        return Passes(settings(), factory).dispatch(now)


def print_report(report: Report) -> None:
    if report.recovered:
        typer.echo(f"  recovered {report.recovered} claim(s) of stopped workers")
    if report.held:
        typer.echo(f"  held      {report.held} overdue (approve: `mobilise outbox approve`)")
    for status, count in sorted(report.outcomes.items()):
        typer.echo(f"  {status:<9} {count}")


@app.command("status")
@reports_errors
def status() -> None:
    """Messages per journey, step and status."""
    with transaction() as session:
        rows = held.status(session)
    if not rows:
        typer.echo("the outbox is empty")
    for journey, step, state, count in rows:
        typer.echo(f"{journey:<32} {step:<20} {state:<11} {count:>9}")


@app.command("approve")
@reports_errors
def approve(
    journey: str = typer.Option(None, "--journey", help="Only this journey's held messages."),
    step: str = typer.Option(None, "--step", help="Only this step's held messages."),
    now: Now = None,
) -> None:
    """Queue held (far overdue) messages again, due at `--now`: the next dispatch sends them."""
    moment = parse_now(now)
    with transaction() as session:
        count = held.approve(session, now=moment, journey_id=journey, step_id=step)
    typer.echo(f"approved {count} held message(s)")
