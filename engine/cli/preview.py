"""`mobilise preview TEMPLATE`: one template rendered with sample or real data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from jinja2 import TemplateError
from sqlalchemy import select

from engine.cli.common import reports_errors, settings, transaction
from engine.errors import Invalid, NotFound
from engine.render import variables
from engine.render.library import TemplateLibrary
from engine.render.messages import RenderedEmail
from engine.rules.supporters import normalise_email
from engine.store.models import Supporter

# Previews are not messages: id 0 is never given to a real one, so a click on a
# preview's link finds no message and records nothing.
PREVIEW_MESSAGE_ID = 0


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
    library = TemplateLibrary(config.project_dir / "templates" / "email")
    context = variables.sample_context()
    if supporter is not None:
        context.update(_supporter_context(supporter))
    compiled = library.get(template)
    try:
        email = compiled.render(
            context,
            message_id=PREVIEW_MESSAGE_ID,
            journey="preview",
            step=template,
            base_url=config.base_url,
            secret=config.secret_key,
        )
    except TemplateError as exc:
        raise Invalid(f"cannot render {template!r}: {exc}", hint="run `mobilise validate`") from exc
    typer.echo(_headers_and_text(email))
    if out is None:
        typer.echo(email.html)
    else:
        out.write_text(email.html, encoding="utf-8")
        typer.echo(f"HTML written to {out}")


def _supporter_context(email: str) -> dict[str, object]:
    address = normalise_email(email)
    with transaction() as session:
        found = session.scalars(select(Supporter).where(Supporter.email == address)).first()
        if found is None:
            raise NotFound(f"no supporter {email!r}", hint="check the address, or omit it")
        return {"first_name": found.first_name or "", "last_name": found.last_name or ""}


def _headers_and_text(email: RenderedEmail) -> str:
    headers = [f"Subject: {email.subject}", f"Preheader: {email.preheader}"]
    headers += [f"{name}: {value}" for name, value in email.headers.items()]
    return "\n".join([*headers, "", email.text])
