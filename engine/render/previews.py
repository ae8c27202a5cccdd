"""One template rendered for a person to look at: the CLI's `preview` and the dashboard's
preview page show exactly this, so what a manager checks is what the engine sends."""

from __future__ import annotations

from collections.abc import Mapping

from jinja2 import TemplateError

from engine.config import Secret
from engine.errors import Invalid
from engine.render import variables
from engine.render.library import TemplateLibrary
from engine.render.messages import RenderedEmail

# Previews are not messages: id 0 is never given to a real one, so a click on a
# preview's link finds no message and records nothing.
PREVIEW_MESSAGE_ID = 0
# Gmail clips a message whose HTML is larger than this, hiding its end (and the
# unsubscribe link) behind "[Message clipped]".
GMAIL_CLIP_BYTES = 102 * 1024


def render_preview(
    library: TemplateLibrary,
    template: str,
    *,
    person: Mapping[str, object] | None = None,
    base_url: str,
    secret: Secret,
) -> RenderedEmail:
    """`template` with the catalogue's sample values, overridden by a real person's facts.

    Raises NotFound for an unknown template and Invalid for one that does not render."""
    context = variables.sample_context()
    context.update(person or {})
    compiled = library.get(template)
    try:
        return compiled.render(
            context,
            message_id=PREVIEW_MESSAGE_ID,
            journey="preview",
            step=template,
            base_url=base_url,
            secret=secret,
        )
    except TemplateError as exc:
        raise Invalid(f"cannot render {template!r}: {exc}", hint="run `mobilise validate`") from exc


def html_bytes(email: RenderedEmail) -> tuple[int, bool]:
    """The HTML part's size in bytes, and whether Gmail would clip it."""
    size = len(email.html.encode())
    return size, size > GMAIL_CLIP_BYTES


def header_lines(email: RenderedEmail) -> list[tuple[str, str]]:
    """Subject, preheader and the email's own headers, in the order a reader wants them."""
    return [("Subject", email.subject), ("Preheader", email.preheader), *email.headers.items()]
