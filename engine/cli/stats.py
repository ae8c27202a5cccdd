"""`mobilise stats [JOURNEY] [--format table|json|csv] [--by step|segment] [--rebuild]`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import typer
from sqlalchemy.orm import Session

from engine import declarations
from engine.cli.common import Now, parse_now, reports_errors, settings, transaction
from engine.errors import Invalid
from engine.stats import export, report

F = TypeVar("F")


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
    if output is Format.table and not found:
        typer.echo("no journey yet: declare one in journeys/ and run `mobilise sync`")
    _echo(
        found,
        output,
        single=journey is not None,
        as_json=export.as_json,
        as_csv=export.as_csv,
        as_table=export.as_table,
    )


def _by_segment(
    session: Session, ids: list[str], output: Format, *, single: bool, at: datetime
) -> None:
    declared = declarations.read_segments(settings().project_dir / "segments")
    if declared.problems:
        raise Invalid("the declared segments have problems", problems=declared.problems)
    found = [report.by_segment(session, i, declared.segments, now=at) for i in ids]
    _echo(
        found,
        output,
        single=single,
        as_json=export.segments_json,
        as_csv=export.segments_csv,
        as_table=export.segments_table,
    )


def _echo(
    found: list[F],
    output: Format,
    *,
    single: bool,
    as_json: Callable[[F], dict[str, Any]],
    as_csv: Callable[[list[F]], str],
    as_table: Callable[[F], str],
) -> None:
    """The figures in the format asked for: one JSON object for a single journey (a list
    otherwise), one CSV, or the tables one after the other."""
    if output is Format.json:
        payload = [as_json(s) for s in found]
        typer.echo(json.dumps(payload[0] if single else payload, indent=2, ensure_ascii=False))
    elif output is Format.csv:
        typer.echo(as_csv(found), nl=False)
    else:
        typer.echo("\n".join(as_table(s) for s in found), nl=False)
