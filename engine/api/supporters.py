"""`POST /api/supporters/{export,rectify,restrict,erase}`: supporters' rights, for admins.

The address travels in the JSON body, never in the URL: URLs end up in access logs and
proxies. Every call is logged in the audit log under the caller's key (`apikey:<id>`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from engine.api.deps import AppSettings, DbSession
from engine.api.staff import api_staff
from engine.rules.rights import rectification
from engine.rules.staff import Role
from engine.send import configured_transport
from engine.store import audit, data_export, personal_data, restrictions
from engine.store.apikeys import Staff

router = APIRouter(prefix="/api/supporters", tags=["supporters' rights"])
ApiAdmin = Annotated[Staff, Depends(api_staff(Role.admin))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid API key"},
    403: {"description": "the key is not an admin's"},
    404: {"description": "no supporter with that address"},
    422: {"description": "invalid body: each problem names its field"},
}


class SupporterRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320, description="the supporter's address, as they gave it")


class RectifyRequest(SupporterRef):
    new_email: str | None = Field(default=None, max_length=320)
    first_name: str | None = Field(default=None, max_length=1000)
    last_name: str | None = Field(default=None, max_length=1000)
    postal_code: str | None = Field(default=None, max_length=100, description="'' blanks it")


class RestrictRequest(SupporterRef):
    lift: bool = Field(default=False, description="lift the restriction instead")


class RightsDone(BaseModel):
    supporter_id: int
    action: str
    changed: bool = True
    fields: list[str] = []
    copies_deleted: int = 0


def _now(request: Request) -> Any:
    return request.app.state.clock()


@router.post("/export", responses=_ERRORS)
def export(
    body: SupporterRef, request: Request, session: DbSession, who: ApiAdmin
) -> dict[str, Any]:
    """Everything stored about the supporter: identity, consents (with their wording and
    source), signatures, emails, clicks, gifts, journeys, suppressions, events, requests."""
    supporter_id = personal_data.find(session, body.email)
    return data_export.export(
        session, supporter_id, actor=audit.api_key(who.key_id), now=_now(request)
    )


@router.post("/rectify", responses=_ERRORS)
def rectify(
    body: RectifyRequest, request: Request, session: DbSession, who: ApiAdmin
) -> RightsDone:
    """Correct the address, names or postal code, normalised as a signature's are."""
    given = {
        "email": body.new_email,
        "first_name": body.first_name,
        "last_name": body.last_name,
        "postal_code": body.postal_code,
    }
    change = rectification({k: v for k, v in given.items() if v is not None})
    supporter_id = personal_data.find(session, body.email)
    personal_data.rectify(
        session, supporter_id, change, actor=audit.api_key(who.key_id), now=_now(request)
    )
    return RightsDone(supporter_id=supporter_id, action="rectify", fields=change.fields)


@router.post("/restrict", responses=_ERRORS)
def restrict(
    body: RestrictRequest, request: Request, session: DbSession, who: ApiAdmin
) -> RightsDone:
    """Restrict processing (nothing sent, no journey step, data kept), or lift it."""
    supporter_id = personal_data.find(session, body.email)
    changed = restrictions.restrict(
        session, supporter_id, actor=audit.api_key(who.key_id), now=_now(request), lift=body.lift
    )
    action = "lift-restriction" if body.lift else "restrict"
    return RightsDone(supporter_id=supporter_id, action=action, changed=changed)


@router.post("/erase", responses=_ERRORS)
def erase(
    body: SupporterRef,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    who: ApiAdmin,
) -> RightsDone:
    """Erase the supporter's personal data for good; counts and statistics stay exact, and
    the address's keyed hash keeps it from being imported again."""
    supporter_id = personal_data.find(session, body.email)
    done = personal_data.erase(
        session,
        personal_data.one(supporter_id),
        now=_now(request),
        actor=audit.api_key(who.key_id),
        secret=settings.keys,
    )
    copies = configured_transport.forget_copies(settings, done.message_ids)
    return RightsDone(supporter_id=supporter_id, action="erase", copies_deleted=copies)
