"""`mobilise preview TEMPLATE`: one template rendered with sample or real data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import reports_errors, settings, transaction
from engine.render.library import TemplateLibrary
from engine.render.messages import RenderedEmail
from engine.render.previews import header_lines, render_preview
from engine.send.identity import identity, templates_dir
from engine.store import supporters


@reports_errors
def preview(
    template: Annotated[str, typer.Argument(help="template name, e.g. update")],
    supporter: Annotated[
        str | None, typer.Option("--supporter", help="render with this supporter's data")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the HTML here; headers and text print")
    ] = None,
) -> None:
    """Render TEMPLATE's subject, headers, plain text and HTML."""
    config = settings()
    person = None
    if supporter is not None:
        with transaction() as session:
            person = supporters.preview_facts(session, supporter, now=datetime.now(UTC))
    email = render_preview(
        TemplateLibrary(templates_dir(config), site=identity(config).site),
        template,
        person=person,
        base_url=config.base_url,
        secret=config.keys,
    )
    typer.echo(_headers_and_text(email))
    if out is None:
        typer.echo(email.html)
    else:
        out.write_text(email.html, encoding="utf-8")
        typer.echo(f"HTML written to {out}")


def _headers_and_text(email: RenderedEmail) -> str:
    headers = [f"{name}: {value}" for name, value in header_lines(email)]
    return "\n".join([*headers, "", email.text])
