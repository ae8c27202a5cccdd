"""`mobilise stats [JOURNEY] [--format table|json|csv] [--by step|segment] [--rebuild]`."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

import typer
from sqlalchemy.orm import Session

from engine import declarations
from engine.cli.common import Now, parse_now, reports_errors, settings, transaction
from engine.errors import Invalid
from engine.stats import export, report


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class By(StrEnum):
    step = "step"
    segment = "segment"


@reports_errors
def stats(
    journey: str = typer.Argument(None, help="A journey id (default: every journey)."),
    output: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
    by: By = typer.Option(
        By.step, "--by", help="step (the funnel) or segment (each declared segment's people)."
    ),
    rebuild: bool = typer.Option(
        False, "--rebuild", help="Count the summary rows again from the tables first."
    ),
    now: Now = None,
) -> None:
    """Funnel per step, variant and milestone, with A/B verdicts (summary rows: instant);
    with `--by segment`, the journey's emails to each declared segment's people."""
    with transaction() as session:
        if rebuild:
            written = report.rebuild(session)
            typer.echo(f"rebuilt {written} summary row(s)", err=True)
        ids = [journey] if journey else report.journey_ids(session)
        if by is By.segment:
            _by_segment(session, ids, output, single=journey is not None, at=parse_now(now))
            return
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


def _by_segment(
    session: Session, ids: list[str], output: Format, *, single: bool, at: datetime
) -> None:
    declared = declarations.read_segments(settings().project_dir / "segments")
    if declared.problems:
        raise Invalid("the declared segments have problems", problems=declared.problems)
    found = [report.by_segment(session, i, declared.segments, now=at) for i in ids]
    if output is Format.json:
        payload = [export.segments_json(s) for s in found]
        typer.echo(json.dumps(payload[0] if single else payload, indent=2, ensure_ascii=False))
    elif output is Format.csv:
        typer.echo(export.segments_csv(found), nl=False)
    else:
        typer.echo("\n".join(export.segments_table(s) for s in found), nl=False)
