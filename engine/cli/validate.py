"""`mobilise validate`: every problem of the declared files and templates, in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import settings
from engine.cli.declared import checked, exit_on_problems, print_warnings


def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Campaign files or folders (default: all).")
    ] = None,
) -> None:
    """Check the organisation, journeys, segments and templates; print `file:line: message`
    per problem (all of them, in one run) and exit 1 if there is any. Placeholders left
    from the example and images that will not load are warnings: printed, exit 0."""
    declared = checked(settings().project_dir, paths or None)
    print_warnings(declared.warnings)
    exit_on_problems(declared.problems)
    counts = f"{len(declared.journeys)} journey(s), {len(declared.segments)} segment(s)"
    warned = f", {len(declared.warnings)} warning(s)" if declared.warnings else ""
    typer.echo(f"ok: {counts}{warned}")
