"""`POST /api/templates/{name}/preview`: the dashboard's preview as JSON, for API clients."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from engine.api.deps import AppSettings, DbSession, get_templates
from engine.api.staff import ApiManager
from engine.render.previews import html_bytes, render_preview
from engine.store import supporters

router = APIRouter(prefix="/api/templates", tags=["templates"])


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


@router.post("/{name}/preview")
def preview(
    request: Request,
    settings: AppSettings,
    session: DbSession,
    _who: ApiManager,
    name: str,
    body: PreviewRequest | None = None,
) -> PreviewOut:
    """Render a template with sample data, or with a supporter's (manager role or above)."""
    person = None
    if body is not None and body.supporter:
        person = supporters.preview_facts(session, body.supporter)
    email = render_preview(
        get_templates(request),
        name,
        person=person,
        base_url=settings.base_url,
        secret=settings.secret_key,
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
