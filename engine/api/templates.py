"""`POST /api/templates/{name}/preview`: the dashboard's preview as JSON, for API clients."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from engine.api.deps import AppSettings, DbSession, get_templates
from engine.api.responses import errors
from engine.api.staff import ApiManager
from engine.config import Settings
from engine.render.messages import RenderedEmail
from engine.render.previews import html_bytes, render_preview
from engine.store import supporters

router = APIRouter(prefix="/api/templates", tags=["templates"])


def previewed(
    request: Request,
    settings: Settings,
    name: str,
    *,
    session: Session | None = None,
    supporter: str | None = None,
) -> RenderedEmail:
    """Template `name` as every preview shows it (this API and the dashboard): with the
    supporter's facts when an address is given, else with sample data."""
    person = None
    if session is not None and supporter is not None:
        person = supporters.preview_facts(session, supporter, now=request.app.state.clock())
    return render_preview(
        get_templates(request),
        name,
        person=person,
        base_url=settings.base_url,
        secret=settings.keys,
    )


class PreviewRequest(BaseModel):
    # In the body, not the URL: addresses must not end up in access logs.
    supporter: str | None = None


class PreviewOut(BaseModel):
    template: str
    version: str
    subject: str
    preheader: str
    headers: dict[str, str]
    text: str
    html: str
    html_bytes: int
    clipped_by_gmail: bool


@router.post(
    "/{name}/preview",
    responses=errors(
        {
            401: "no valid API key",
            403: "the key's role is below manager",
            404: "unknown template, or no supporter with that address",
            422: "the template does not render, or the body is not a preview request",
        }
    ),
)
def preview(
    request: Request,
    settings: AppSettings,
    session: DbSession,
    _who: ApiManager,
    name: str,
    body: PreviewRequest | None = None,
) -> PreviewOut:
    """Render a template with sample data, or with a supporter's (manager role or above)."""
    email = previewed(
        request,
        settings,
        name,
        session=session,
        supporter=(body.supporter or None) if body else None,
    )
    size, clipped = html_bytes(email)
    return PreviewOut(
        template=email.template,
        version=email.version,
        subject=email.subject,
        preheader=email.preheader,
        headers=dict(email.headers),
        text=email.text,
        html=email.html,
        html_bytes=size,
        clipped_by_gmail=clipped,
    )
