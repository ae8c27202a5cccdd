"""`mobilise segments`: each declared segment's current size."""

from __future__ import annotations

import typer

from engine.cli.common import Now, parse_now, reports_errors, settings, transaction
from engine.cli.declared import load
from engine.errors import Invalid
from engine.store import segments as segment_sql


@reports_errors
def segments(now: Now = None) -> None:
    """Print each declared segment's current size (one COUNT per segment, in SQL)."""
    moment = parse_now(now)
    declared = load(settings().project_dir)
    if declared.problems:
        raise Invalid("the declared files have problems", problems=declared.problems)
    named = declared.conditions
    with transaction() as session:
        for name, segment in sorted(declared.segments.items()):
            size = segment_sql.size(session, segment.where, now=moment, segments=named)
            typer.echo(f"{name:<30} {size:>9}  {segment.description}")
