"""`validate_templates`: every problem of every template, as `file:line: message`.

Compiling finds syntax, structure, sandbox and link problems; this adds what only a
render shows (a filter fed the wrong type, a sandbox refusal at run time, the size
limit) by rendering each template with the catalogue's sample values, and again as
for a supporter with no name who never gave.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from jinja2 import TemplateError, nodes

from engine.errors import Invalid, Problem
from engine.render import sandbox, variables
from engine.render import site as sites
from engine.render.compiled import CompiledTemplate
from engine.render.compiler import compile_template
from engine.render.jinja_check import check_jinja, used_variables
from engine.render.library import template_names
from engine.render.site import Site
from engine.render.sources import TemplateSource, load_source
from engine.rules.template_variables import CATALOGUE

# Gmail clips messages whose HTML is larger than about 102 KB, hiding the end of the
# email, unsubscribe link and postal address included.
MAX_HTML_BYTES = 102 * 1024
# Links in a validation render are never sent: a key made per process, never a constant.
_THROWAWAY = secrets.token_bytes(32)


def site_warnings(directory: Path, site: Site) -> sites.Warnings:
    """Placeholders and images that will not load, in every template of `directory` (a
    template with problems of its own is left to `validate_templates`)."""
    lines: list[tuple[str, str, int]] = []
    for name in template_names(directory) if directory.is_dir() else []:
        try:
            source = load_source(directory, name)
        except Invalid:
            continue
        lines += [(text, *source.origin(n)) for n, text in enumerate(source.mjml.splitlines(), 1)]
    return sites.check(lines, site)


def validate_templates(directory: Path, site: Site | None = None) -> list[Problem]:
    """Problems of every template in `directory`, with `site` written in (default: the
    sample one); an empty list means all are fine."""
    if not directory.is_dir():
        return [Problem(f"no templates directory {directory}")]
    problems: list[Problem] = []
    for name in template_names(directory):
        try:
            source = load_source(directory, name, site or sites.sample())
        except Invalid as exc:
            problems.extend(exc.problems)
            continue
        try:
            compiled = compile_template(source)
        except Invalid as exc:
            # Still name the unknown variables of the parts that parse: every problem of
            # a template comes in one run.
            problems.extend(exc.problems)
            problems.extend(_unknown_variables(source, used_variables(check_jinja(source)[0])))
            continue
        unknown = _unknown_variables(source, compiled.variables)
        # Sample data has no value for an unknown variable: rendering would only repeat it.
        problems.extend(unknown or _sample_render(compiled))
    return problems


def _unknown_variables(source: TemplateSource, used: frozenset[str]) -> list[Problem]:
    unknown = sorted(used - set(CATALOGUE))
    known = ", ".join(sorted(CATALOGUE))
    return [
        Problem(
            f"unknown variable {name!r}",
            *_first_use(source, name),
            hint=f"templates can use {known}",
        )
        for name in unknown
    ]


def _first_use(source: TemplateSource, name: str) -> tuple[str, int]:
    for key in ("subject", "preheader"):
        if name in _names(getattr(source, key)):
            return source.keys.get(key, (source.path, 1))
    lines = _names(source.mjml).get(name)
    return source.origin(lines) if lines else (source.path, 1)


def _names(text: str) -> dict[str, int]:
    """First line of each variable read in `text`."""
    found: dict[str, int] = {}
    for node in sandbox.HTML.parse(text).find_all(nodes.Name):
        if node.ctx == "load":
            found.setdefault(node.name, node.lineno)
    return found


def _sample_render(compiled: CompiledTemplate) -> list[Problem]:
    for label, context in (
        ("sample data", variables.sample_context()),
        ("no name and no gift", variables.sparse_context()),
    ):
        try:
            email = compiled.render(
                context,
                message_id=1,
                journey="validate",
                step=compiled.name,
                base_url="https://mobilise.example.org",
                secret=_THROWAWAY,
            )
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            message = f"rendering with {label} fails: {type(exc).__name__}: {exc}"
            return [Problem(message, file=compiled.source.path)]
        size = len(email.html.encode())
        if size > MAX_HTML_BYTES:
            return [
                Problem(
                    f"HTML is {size:,} bytes, over the {MAX_HTML_BYTES:,} at which Gmail clips",
                    file=compiled.source.path,
                )
            ]
    return []
