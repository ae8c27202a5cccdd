"""`mobilise demo [--signatures N] [--force]`: a living campaign in the configured database
(engine/simulation/demo.py makes it; this module parses, shows progress and prints)."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import typer
from sqlalchemy.engine import make_url

from engine.cli.common import Now, parse_now, reports_errors, sessions, settings
from engine.cli.declared import checked, exit_on_problems
from engine.cli.progress import bars
from engine.simulation.demo import Summary, fill
from engine.simulation.timeline import DAYS, Options
from engine.store import migrate


@reports_errors
def demo(
    signatures: int = typer.Option(
        150_000, "--signatures", min=1_000, help="Signatures over the six weeks."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Empty a database that holds a campaign first (API keys and the audit log stay).",
    ),
    now: Now = None,
    seed: int = typer.Option(14, help="Random seed: same seed, same campaign."),
) -> None:
    """Fill the database with six weeks of the shipped campaign, ending at --now, made by the
    real engine in virtual time: signatures (some on paper), milestones, emails, clicks,
    unsubscribes, bounces, gifts and an A/B test. Generated people only (example.org)."""
    config = settings()
    declared = checked(config.project_dir)
    exit_on_problems(declared.problems)
    end = parse_now(now).replace(minute=0, second=0, microsecond=0)
    where = make_url(config.database_url).render_as_string(hide_password=True)
    started = time.perf_counter()
    migrate.upgrade(config.database_url)
    options = Options(end=end, signatures=signatures, seed=seed)
    with sessions() as factory, bars() as progress:
        summary = fill(
            factory,
            config,
            declared.campaigns,
            declared.conditions,
            options,
            force=force,
            where=where,
            progress=progress,
        )
    print_summary(summary, time.perf_counter() - started, config.base_url)


def _euros(cents: int) -> str:
    return f"{cents / 100:,.0f} €"


def print_summary(summary: Summary, seconds: float, base_url: str) -> None:
    zone = ZoneInfo(summary.zone)

    def local(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    tally = summary.tally
    typer.echo(
        f"demo campaign: {DAYS} days from {local(summary.begin)} to {local(summary.end)} "
        f"({summary.zone}), made in {seconds:.0f} s"
    )
    typer.echo(
        f"petition {summary.petition}: {summary.count:,} signatures ({summary.started_at:,} "
        f"before the six weeks, {summary.online:,} through the form, {summary.paper:,} on paper)"
    )
    for milestone in summary.milestones:
        state = f"reached {local(milestone.reached_at)}" if milestone.reached_at else "not reached"
        typer.echo(f"milestone {milestone.threshold:,}: {state}")
    for row in summary.steps:
        f = row.figures
        name = f"{row.step_id} ({row.variant})" if row.variant else row.step_id
        typer.echo(
            f"{name:<22} sent {f.sent:>7,}  clicked by {f.clickers:>5,}  unsubscribed "
            f"{f.unsubscribed:>4,}  bounced {f.bounced:>4,}  gifts {f.gifts:>4,}"
            f"  {_euros(f.one_off_cents)} + {_euros(f.monthly_cents)} a month"
        )
    people = sum(r.figures.clicks for r in summary.steps)
    typer.echo(
        f"clicks {tally.get('clicks', 0):,} ({tally.get('clicks', 0) - people:,} by mail "
        f"scanners, flagged automated); unsubscribes {tally.get('unsubscribes', 0):,}; "
        f"delivered {tally.get('delivered', 0):,}, "
        f"bounces {tally.get('bounce', 0):,}, blocks {tally.get('blocked', 0):,}, "
        f"spam reports {tally.get('spamreport', 0):,}"
    )
    typer.echo(
        f"gifts: {tally.get('one-off gifts', 0):,} one-off "
        f"({_euros(tally.get('one-off cents', 0))}), {tally.get('monthly gifts', 0):,} monthly "
        f"({_euros(tally.get('monthly cents', 0))} a month)"
    )
    if summary.ab:
        typer.echo(f"A/B test on the first-gift ask: variants {', '.join(summary.ab)}")
    spent = ", ".join(f"{what} {s:.0f} s" for what, s in sorted(summary.seconds.items()))
    typer.echo(f"virtual time: {summary.passes:,} journey passes and dispatches ({spent})")
    typer.echo(
        f"next: `mobilise run`, then {base_url}/dashboard with a key from "
        "`mobilise apikey create --role admin` (`make run` would sync the shipped journey "
        "again: a new version without the demo's A/B test)"
    )
