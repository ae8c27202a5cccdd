"""The declared files as the commands load them: journeys, segments and the templates they use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import typer

from engine import declarations
from engine.cli.common import settings
from engine.errors import Invalid, Problem
from engine.render.library import TemplateLibrary
from engine.render.template_checks import validate_templates
from engine.send import identity


def known_templates(root: Path) -> frozenset[str] | None:
    """Template names under templates/email/ (partials start with `_`); None if absent.

    The template stage will offer validate_templates(dir) with each template's variables;
    until then, names are what validation can check."""
    directory = root / "templates" / "email"
    if not directory.is_dir():
        return None
    return frozenset(p.stem for p in directory.glob("*.mjml") if not p.name.startswith("_"))


def load(root: Path, paths: list[Path] | None = None) -> declarations.Declared:
    """The declared files, checked against the templates: names and the variables each uses
    (a template that does not compile is reported by `validate_templates`, not here)."""
    directory = root / "templates" / "email"
    names = known_templates(root)
    variables = _template_variables(directory) if names else None
    return declarations.read(root, templates=names, template_variables=variables, paths=paths)


def _template_variables(directory: Path) -> dict[str, frozenset[str]]:
    library = TemplateLibrary(directory)
    found: dict[str, frozenset[str]] = {}
    for name in library.names():
        try:
            found[name] = library.get(name).variables
        except Invalid:
            continue
    return found


def checked(root: Path, paths: list[Path] | None = None) -> declarations.Declared:
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
