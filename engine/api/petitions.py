"""Public petition endpoints: sign (JSON or HTML form) and read the count."""

from __future__ import annotations

import re
from datetime import datetime
from itertools import chain
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from engine.api.deps import DbSession
from engine.api.responses import errors
from engine.config import Settings
from engine.errors import Invalid, UnsupportedMediaType
from engine.intake.signature_queue import SignatureQueue
from engine.rules.geo import POSTAL_PATTERN
from engine.rules.signature_rows import (
    CONSENT,
    NAME_MAX,
    WEB_FIELDS,
    RowError,
    json_fields,
    parse_signer,
    refused_names,
)
from engine.rules.supporters import EMAIL_SCHEMA
from engine.rules.tabular import FLAG_WORDS, spelled_pattern, visible_pattern
from engine.store import petitions

router = APIRouter(prefix="/api/petitions", tags=["petitions"])
_JSON = "application/json"
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_MEDIA_TYPES = frozenset((_JSON, _URLENCODED, _MULTIPART))
_SLUG_PATTERN = r"^[a-z0-9-]{1,100}$"
PetitionSlug = Annotated[str, Path(pattern=_SLUG_PATTERN)]


class MilestoneRead(BaseModel):
    threshold: int
    reached_at: datetime | None


class PetitionRead(BaseModel):
    slug: str
    title: str
    count: int
    milestones: list[MilestoneRead]


def _body_schema(flag: dict[str, Any], *, alias: bool) -> dict[str, Any]:
    """The fields of a signature, one vocabulary for the JSON body, the form and the CSV.
    With `alias` (JSON), the answers come either as `consent_<purpose>` fields or as the
    object `consents`, not both: two bodies, either of which is a signature."""
    # Stated exactly: lengths, no control or invisible character (engine/rules/tabular.py),
    # the postal codes the server knows (engine/rules/geo.py) and an address email-validator
    # takes (`format: email`). Which purposes a petition declares, only the server can tell:
    # the schema is one for every petition, and a purpose the petition lacks is refused (422).
    named = {"type": "string", "pattern": visible_pattern(joiners=True), "maxLength": NAME_MAX}

    def optional(schema: dict[str, Any]) -> dict[str, Any]:
        return schema | {"type": ["string", "null"]} if alias else schema

    fields: dict[str, Any] = {
        "email": EMAIL_SCHEMA,
        "first_name": optional(named),
        "last_name": optional(named),
        "postal_code": optional({"type": "string", "pattern": POSTAL_PATTERN}),
    }
    flags = {
        "type": "object",
        "properties": fields | ({"consents": {"type": "null"}} if alias else {}),
        "required": ["email"],
        "patternProperties": {f"^{CONSENT}{_PURPOSE_PATTERN[1:]}": flag},
        "additionalProperties": False,
        "description": (
            f"A `{CONSENT}<purpose>` field for each consent purpose the petition declares"
            " (e.g. consent_updates, consent_fundraising); an absent one is not an answer."
            " Other fields, and purposes the petition does not declare, are refused (422)."
            " The server dates the signature."
        ),
    }
    if not alias:
        return flags
    keyed = {
        "type": "object",
        "properties": fields
        | {
            "consents": {
                "type": ["object", "null"],
                "propertyNames": {"pattern": _PURPOSE_PATTERN},
                "additionalProperties": flag,
                "description": "purpose: answer, for each purpose the petition declares",
            }
        },
        "required": ["email"],
        "additionalProperties": False,
        "description": "The answers keyed by purpose; other fields are refused (422).",
    }
    return {"anyOf": [flags, keyed]}


_PURPOSE_PATTERN = "^[a-z0-9_-]+$"
_FLAG_TEXT = {
    "type": "string",
    "pattern": spelled_pattern(FLAG_WORDS),
    "description": "ticked: on, yes, oui, 1, true; not: no, non, 0, false, off; blank: no answer",
}
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
            _JSON: {"schema": _body_schema({"type": ["boolean", "null"]}, alias=True)},
            _URLENCODED: {"schema": _body_schema(_FLAG_TEXT, alias=False)},
        },
        "required": True,
    },
}


_SLUG = re.compile(_SLUG_PATTERN)


async def _fields(request: Request, media: str, purposes: frozenset[str]) -> dict[str, str]:
    """The signature's fields as text, whatever the door, once their names are checked."""
    if media == _JSON:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise Invalid(f"body: not JSON ({exc})", field="body") from None
        fields, problems = json_fields(body, purposes=purposes)
    else:
        if media == _URLENCODED:
            text = (await request.body()).decode("utf-8", "replace")
            fields = dict(parse_qsl(text, keep_blank_values=True))
            files: list[str] = []
        else:
            async with request.form() as form:  # closes any uploaded file
                items = form.multi_items()
                fields = {k: v for k, v in items if isinstance(v, str)}
                files = [k for k, v in items if not isinstance(v, str)]
        problems = refused_names(
            chain(fields, files), fields=WEB_FIELDS - set(files), purposes=purposes
        )
    if problems:
        raise Invalid(problems[0].message, problems=problems)
    return fields


@router.post(
    "/{slug}/signatures",
    status_code=202,
    openapi_extra=_SIGN_OPENAPI,
    responses={
        202: {"description": "a JSON signature, received"},
        303: {
            "description": "a form's signature: on to the thank-you page (/p/{slug}/merci);"
            " a form refused answers a browser (Accept: text/html) with a page",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **errors(
            {
                403: "posted from a site not allowed (Origin or Referer)",
                404: "unknown petition",
                413: "body over MOBILISE_SIGN_MAX_BYTES",
                415: "neither application/json nor a form",
                422: "invalid or unknown field, or a purpose the petition lacks",
                429: "too many signatures from this address; see Retry-After",
            }
        ),
    },
)
async def sign(request: Request) -> Response:
    """Sign. The answer is the same whether or not this email had already signed."""
    slug: str = request.path_params["slug"]
    if not _SLUG.match(slug):
        raise Invalid("slug: lowercase letters, digits and hyphens", field="slug")
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in _MEDIA_TYPES:
        # A body browsers send cross-site without asking (text/plain) is not a signature.
        raise UnsupportedMediaType(
            f"'{media or 'no content type'}' is not a signature",
            hint=f"send {_JSON}, or a form ({_URLENCODED} or {_MULTIPART})",
        )
    queue: SignatureQueue = request.app.state.signing
    purposes = await queue.purposes(slug)
    fields = await _fields(request, media, purposes)
    settings: Settings = request.app.state.settings
    try:
        row = parse_signer(
            fields,
            line=1,
            now=request.app.state.clock(),
            zone=ZoneInfo(settings.timezone),
            purposes=purposes,
        )
    except RowError as exc:
        raise Invalid(str(exc), field=exc.field) from None
    if row is None or row.email is None:
        raise Invalid("email: an email address is required", field="email")
    await queue.sign(slug, row)
    if media != _JSON:
        # A browser goes on to the thank-you page (engine/api/public.py); reloading it
        # does not post the form again.
        return RedirectResponse(f"/p/{slug}/merci", status_code=303)
    return Response(_RECEIVED % slug.encode(), status_code=202, media_type=_JSON)


_RECEIVED = b'{"status":"received","petition":"%s"}'
SIGN_TEMPLATE = f"{router.prefix}/{{slug}}/signatures"
SIGN_PATH = re.compile(rf"^{re.escape(router.prefix)}/([^/]+)/signatures$")
READ_PATH = re.compile(rf"^{re.escape(router.prefix)}/([^/]+)$")


@router.get("/{slug}", response_model=PetitionRead, responses=errors({404: "unknown petition"}))
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
