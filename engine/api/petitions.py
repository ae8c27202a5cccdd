"""Public petition endpoints: sign (JSON or HTML form) and read the count."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.deps import DbSession
from engine.config import Settings
from engine.errors import Invalid, Problem
from engine.intake.signing import SigningQueue
from engine.rules.signers import RowError, parse_signer
from engine.store import petitions

router = APIRouter(prefix="/api/petitions", tags=["petitions"])
_SLUG_PATTERN = r"^[a-z0-9-]{1,100}$"
PetitionSlug = Annotated[str, Path(pattern=_SLUG_PATTERN)]


class SignatureCreate(BaseModel):
    """A signature from the petition form. Consents map to the petition's purposes."""

    model_config = ConfigDict(extra="ignore")
    email: str = Field(max_length=320)
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=10)
    consents: dict[str, bool] = Field(default_factory=dict)


class MilestoneRead(BaseModel):
    threshold: int
    reached_at: datetime | None


class PetitionRead(BaseModel):
    slug: str
    title: str
    count: int
    milestones: list[MilestoneRead]


_SIGN_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "slug",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": _SLUG_PATTERN},
        }
    ],
    "requestBody": {
        "content": {
            "application/json": {"schema": SignatureCreate.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "email": {"type": "string"},
                        "first_name": {"type": "string"},
                        "last_name": {"type": "string"},
                        "postal_code": {"type": "string"},
                        "consent_updates": {"type": "string"},
                        "consent_fundraising": {"type": "string"},
                    },
                }
            },
        },
        "required": True,
    },
}


_SLUG = re.compile(_SLUG_PATTERN)
_CHECKED = ("on", "yes", "oui", "1", "true")


async def _form_or_json(request: Request) -> tuple[SignatureCreate, bool]:
    """The same fields from a JSON body or an HTML form (checkboxes `consent_<purpose>`)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif content_type.startswith("multipart/form-data"):
        async with request.form() as form:  # closes any uploaded file
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        return SignatureCreate.model_validate_json(await request.body()), False
    consents = {
        k.removeprefix("consent_"): v.strip().lower() in _CHECKED
        for k, v in fields.items()
        if k.startswith("consent_")
    }
    return SignatureCreate.model_validate({**fields, "consents": consents}), True


@router.post(
    "/{slug}/signatures",
    status_code=202,
    openapi_extra=_SIGN_OPENAPI,
    responses={
        202: {"description": "received"},
        422: {"description": "invalid field"},
        404: {"description": "unknown petition"},
    },
)
async def sign(request: Request) -> Response:
    """Sign. The answer is the same whether or not this email had already signed."""
    slug: str = request.path_params["slug"]
    if not _SLUG.match(slug):
        raise Invalid("slug: lowercase letters, digits and hyphens", field="slug")
    try:
        body, is_form = await _form_or_json(request)
    except ValidationError as exc:
        problems = [
            Problem(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}",
                field=".".join(map(str, e["loc"])) or None,
            )
            for e in exc.errors()
        ]
        raise Invalid(problems[0].message, problems=problems) from None
    settings: Settings = request.app.state.settings
    now = datetime.now(UTC)
    values = {
        "email": body.email,
        "first_name": body.first_name or "",
        "last_name": body.last_name or "",
        "postal_code": body.postal_code or "",
    }
    values |= {f"consent_{p}": "yes" if g else "no" for p, g in body.consents.items()}
    try:
        row = parse_signer(
            values, line=1, now=now, zone=ZoneInfo(settings.timezone), purposes=body.consents.keys()
        )
    except RowError as exc:
        raise Invalid(str(exc), field=exc.field) from None
    if row is None or row.email is None:
        raise Invalid("email: an email address is required", field="email")
    queue: SigningQueue = request.app.state.signing
    await queue.sign(slug, row)
    if is_form:
        return HTMLResponse(_THANKS.format(slug=escape(slug)), status_code=200)
    return Response(_RECEIVED % slug.encode(), status_code=202, media_type="application/json")


_RECEIVED = b'{"status":"received","petition":"%s"}'
_SIGN_PATH = re.compile(rf"^{re.escape(router.prefix)}/([^/]+)/signatures$")
_ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class SigningFastPath:
    """ASGI middleware: serves `POST /api/petitions/{slug}/signatures` (declared above, and
    so documented) without FastAPI's routing, dependency solving and per-route wrappers,
    which cost twice the CPU of the signature itself (190 -> 107 us a request in process,
    bench/README.md). Errors go to the application's own exception handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            _SIGN_PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {"slug": found.group(1)}
        request = Request(scope, receive, send)
        try:
            response = await sign(request)
        except ClientDisconnect:
            return  # nobody to answer; nothing was queued
        except Exception as exc:
            handler = _handler_for(request, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _handler_for(request: Request, exc: Exception) -> _ExceptionHandler | None:
    handlers: dict[type[Exception], _ExceptionHandler] = request.app.exception_handlers
    return next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)


@router.get("/{slug}", response_model=PetitionRead)
def read(slug: PetitionSlug, session: DbSession) -> PetitionRead:
    """The exact count and the milestones, with the time each was reached."""
    petition = petitions.read(session, slug)
    return PetitionRead(
        slug=petition.slug,
        title=petition.title,
        count=petition.count,
        milestones=[
            MilestoneRead(threshold=m.threshold, reached_at=m.reached_at)
            for m in petition.milestones
        ],
    )


_THANKS = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Merci</title></head><body><main><h1>Merci pour votre signature</h1>
<p>Votre signature pour « {slug} » est enregistrée. Un courriel de confirmation vous
est envoyé.</p></main></body></html>"""
