"""The declared files as the commands load them: journeys, segments and the templates they use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from engine import declarations
from engine.errors import Invalid, Problem
from engine.render.library import TemplateLibrary
from engine.render.template_checks import validate_templates


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
    """The declared files with every problem of theirs and of the templates: what
    `validate` reports and `sync` refuses."""
    declared = load(root, paths)
    declared.problems += validate_templates(root / "templates" / "email")
    return declared


def exit_on_problems(problems: Sequence[Problem]) -> None:
    """Print every problem as `file:line: message`, in file and line order, then exit 1;
    return when there is none."""
    for problem in sorted(problems, key=lambda p: (p.file or "", p.line or 0)):
        typer.echo(str(problem), err=True)
    if problems:
        raise typer.Exit(1)
