"""`mobilise simulate`: options in, the run's tallies out (engine/simulation does the run)."""

from __future__ import annotations

import typer

from engine.cli.common import parse_now, reports_errors, settings
from engine.cli.declared import load
from engine.cli.progress import bars
from engine.errors import Invalid, NotFound
from engine.simulation import report, run


@reports_errors
def simulate(
    journey: str = typer.Argument(..., help="Journey id, e.g. stop-reconnaissance-faciale."),
    supporters: int = typer.Option(1000, help="How many people sign."),
    days: int = typer.Option(30, help="Simulated days."),
    signing_rate: float = typer.Option(None, help="Signatures per day (default: all on day 1)."),
    already: int = typer.Option(0, help="Signatures counted before the start (milestones)."),
    milestone_at: float = typer.Option(
        None,
        help="Days after the start at which the petition reaches the milestones the journey "
        "waits for (signatures from elsewhere), e.g. 3 or 2.5.",
    ),
    consent_rate: float = typer.Option(0.6, help="Share ticking each consent box."),
    donor_rate: float = typer.Option(0.1, help="Share who gave before signing."),
    gift_rate: float = typer.Option(0.05, help="Share who give during the simulation."),
    start: str = typer.Option("2026-05-11T08:00:00+00:00", help="Virtual start (ISO 8601)."),
    seed: int = typer.Option(1, help="Random seed: same seed, same run."),
) -> None:
    """Run JOURNEY in virtual time on a throwaway database; print sends per day and step,
    and who is still waiting at the end, and for what."""
    declared = load(settings().project_dir)
    if declared.problems:
        raise Invalid("the declared files have problems", problems=declared.problems)
    found = next(((c, j) for c, j in declared.journeys if j.id == journey), None)
    if found is None:
        raise NotFound(f"no journey '{journey}'", hint="see journeys/*.yaml")
    scenario = run.Scenario(
        supporters=supporters,
        days=days,
        signing_rate=signing_rate,
        already=already,
        milestone_at=milestone_at,
        consent_rate=consent_rate,
        donor_rate=donor_rate,
        gift_rate=gift_rate,
        start=parse_now(start),
        seed=seed,
    )
    campaign, walked = found
    with bars() as progress:
        outcome = run.simulate(
            campaign, walked, scenario, named=declared.conditions, progress=progress
        )
    print_outcome(outcome, days)


def print_outcome(outcome: report.Outcome, days: int) -> None:
    for note in outcome.notes:
        typer.echo(f"note: {note}")
    steps = outcome.send_steps
    width = max([10, *[len(s) for s in steps]])
    typer.echo(f"journey {outcome.journey_id}: emails sent per day ({outcome.zone}) and step")
    typer.echo("day        " + " ".join(f"{s:>{width}}" for s in steps))
    for day in sorted({d for d, _ in outcome.sent}):
        typer.echo(f"{day} " + " ".join(f"{outcome.sent[(day, s)]:>{width}}" for s in steps))
    totals = {s: sum(n for (_, step), n in outcome.sent.items() if step == s) for s in steps}
    typer.echo("total      " + " ".join(f"{totals[s]:>{width}}" for s in steps))
    for unsent in outcome.unsent:
        if unsent.status == "queued" and unsent.due is not None:
            why = f"queued for {report.when(unsent.due, outcome.zone)}, after the end"
            if unsent.reason:
                why += f" ({unsent.reason})"
        else:
            why = f"{unsent.status} ({unsent.reason})" if unsent.reason else unsent.status
        typer.echo(f"not sent: {unsent.step_id}: {unsent.count:,} {why}")
    for waiting in outcome.waiting:
        typer.echo(f"{waiting.count:,} waiting at {waiting.step_id} {waiting.why}")
    typer.echo(
        "enrolments: " + ", ".join(f"{state} {n:,}" for state, n in sorted(outcome.states.items()))
    )
    typer.echo(f"petition {outcome.petition}: {outcome.signatures:,} signatures")
    for milestone in outcome.milestones:
        state = (
            f"reached {report.when(milestone.reached_at, outcome.zone)}"
            if milestone.reached_at is not None
            else "not reached"
        )
        typer.echo(f"milestone {milestone.threshold:,} of {outcome.petition}: {state}")
    typer.echo(
        f"virtual time: {days * 24:,} hours in {len(outcome.instants):,} instants "
        f"and {outcome.passes:,} journey passes (from due time to due time)"
    )
