"""`mobilise validate`: every problem of the declared files and templates, in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import settings
from engine.cli.declared import checked, exit_on_problems


def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Campaign files or folders (default: all).")
    ] = None,
) -> None:
    """Check journeys, segments and templates; print `file:line: message` per problem
    (all of them, in one run) and exit 1 if there is any."""
    declared = checked(settings().project_dir, paths or None)
    exit_on_problems(declared.problems)
    typer.echo(f"ok: {len(declared.journeys)} journey(s), {len(declared.segments)} segment(s)")
