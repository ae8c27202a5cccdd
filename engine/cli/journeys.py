"""`mobilise validate | tick | explain | segments`: the journey engine from the shell."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from engine.cli import outbox
from engine.cli.common import (
    Now,
    parse_now,
    reports_errors,
    sessions,
    settings,
    transaction,
)
from engine.errors import Invalid, Problem
from engine.render.library import TemplateLibrary
from engine.render.validation import validate_templates
from engine.scheduler import Passes, journeys_pass
from engine.send import identity
from engine.store import files
from engine.store import segments as segment_sql
from engine.store import timeline as timelines


def known_templates(root: Path) -> frozenset[str] | None:
    """Template names under templates/email/ (partials start with `_`); None if absent.

    The template stage will offer validate_templates(dir) with each template's variables;
    until then, names are what validation can check."""
    directory = root / "templates" / "email"
    if not directory.is_dir():
        return None
    return frozenset(p.stem for p in directory.glob("*.mjml") if not p.name.startswith("_"))


def load(root: Path, paths: list[Path] | None = None) -> files.Declared:
    """The declared files, checked against the templates: names and the variables each uses
    (a template that does not compile is reported by `validate_templates`, not here)."""
    directory = root / "templates" / "email"
    names = known_templates(root)
    variables = _template_variables(directory) if names else None
    return files.read(root, templates=names, template_variables=variables, paths=paths)


def _template_variables(directory: Path) -> dict[str, frozenset[str]]:
    library = TemplateLibrary(directory)
    found: dict[str, frozenset[str]] = {}
    for name in library.names():
        try:
            found[name] = library.get(name).variables
        except Invalid:
            continue
    return found


def checked(root: Path, paths: list[Path] | None = None) -> files.Declared:
    """The declared files with every problem of theirs and of the templates (organisation
    written in): what `validate` reports and `sync` refuses; and the warnings."""
    declared = load(root, paths)
    try:
        found = identity.identity(settings().model_copy(update={"project_dir": root}))
    except Invalid as exc:  # organisation.yaml's own problems are declared.problems already
        declared.problems += [p for p in exc.problems if p not in declared.problems]
        found = None
    site = found.site if found is not None else None
    declared.problems += validate_templates(root / "templates" / "email", site)
    declared.warnings += [*found.placeholders, *found.images] if found is not None else []
    return declared


def print_warnings(warnings: Sequence[Problem]) -> None:
    """Each warning as `file:line: warning: message`, in file and line order."""
    for warning in sorted(warnings, key=lambda p: (p.file or "", p.line or 0)):
        typer.echo(str(replace(warning, message=f"warning: {warning.message}")), err=True)


def exit_on_problems(problems: Sequence[Problem]) -> None:
    """Print every problem as `file:line: message`, in file and line order, then exit 1;
    return when there is none."""
    for problem in sorted(problems, key=lambda p: (p.file or "", p.line or 0)):
        typer.echo(str(problem), err=True)
    if problems:
        raise typer.Exit(1)


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
        anonymised = Passes(settings(), factory).retention(moment).anonymised
        summary = journeys_pass(
            factory,
            now=moment,
            segments=declared.conditions,
            connections=settings().advance_connections,
        )
    typer.echo(f"tick at {moment.isoformat()}")
    if anonymised:
        typer.echo(f"  anonymised {anonymised} (retention period over)")
    for journey_id, count in sorted(summary.enrolled.items()):
        typer.echo(f"  enrolled  {journey_id}: {count}")
    for (journey_id, step_id), count in sorted(summary.queued.items()):
        typer.echo(f"  queued    {journey_id}/{step_id}: {count}")
    for reason, count in sorted(summary.exited.items()):
        typer.echo(f"  exited    {reason}: {count}")
    typer.echo(f"  moved     {summary.moved}")
    outbox.print_report(outbox.dispatch_now(moment))


@reports_errors
def explain(email: str = typer.Argument(..., help="The supporter's email address.")) -> None:
    """The supporter's timeline: events, journey steps, emails, and why any was skipped."""
    zone = ZoneInfo(settings().timezone)
    with transaction() as session:
        person = timelines.find_supporter(session, email.strip().lower())
        if person is None:
            typer.echo(f"no supporter with the address {email}", err=True)
            raise typer.Exit(1)
        entries = timelines.timeline(session, person.id)
    typer.echo(f"{email} (supporter {person.id}), times in {zone.key}")
    for entry in entries:
        local = entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        why = f" — {entry.detail}" if entry.detail else ""
        typer.echo(f"{local}  {entry.what}{why}")


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
