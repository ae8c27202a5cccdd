"""`mobilise stats [JOURNEY] [--format table|json|csv] [--rebuild]`."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from engine.cli.common import reports_errors, transaction
from engine.stats import export, report
from engine.store import counts


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@reports_errors
def stats(
    journey: str = typer.Argument(None, help="A journey id (default: every journey)."),
    output: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Count the summary rows again from the tables first."
    ),
) -> None:
    """Funnel per step, variant and milestone, with A/B verdicts (summary rows: instant)."""
    with transaction() as session:
        if rebuild:
            written = counts.rebuild(session)
            typer.echo(f"rebuilt {written} summary row(s)", err=True)
        ids = [journey] if journey else report.journey_ids(session)
        found = [report.for_journey(session, journey_id) for journey_id in ids]
    if output is Format.json:
        payload = [export.as_json(s) for s in found]
        typer.echo(json.dumps(payload[0] if journey else payload, indent=2, ensure_ascii=False))
    elif output is Format.csv:
        typer.echo(export.as_csv(found), nl=False)
    else:
        if not found:
            typer.echo("no journey yet: declare one in journeys/ and run `mobilise sync`")
        typer.echo("\n".join(export.as_table(s) for s in found), nl=False)
