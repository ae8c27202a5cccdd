"""`POST /api/donations`: record a gift (API key, manager or admin)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from engine.api.deps import AppSettings, DbSession
from engine.api.staff import ApiManager
from engine.track import donations

router = APIRouter(prefix="/api", tags=["donations"])


@router.post(
    "/donations",
    status_code=201,
    responses={
        200: {"description": "a gift with that external id was recorded already"},
        401: {"description": "no valid API key"},
        403: {"description": "the key's role is below manager"},
        422: {"description": "a field is missing, unknown or invalid"},
    },
)
def record_donation(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    _staff: ApiManager,
    body: Any = Body(
        ...,
        examples=[
            {
                "email": "camille@example.org",
                "amount": "30.00",
                "currency": "EUR",
                "donated_at": "2026-05-24T10:12:00+02:00",
                "frequency": "one-off",
                "external_id": "pay_8F2k",
                "reference": "AAAAAAAAACr4mZs0Yc1bN2dJ0zQ",
            }
        ],
    ),
) -> JSONResponse:
    """Record one gift, de-duplicated by `external_id`, attributed by its `reference` or the
    giver's last click; an unknown address becomes a supporter without consent."""
    done = donations.record_one(
        session,
        body,
        secret=settings.secret_key,
        now=request.app.state.clock(),
        zone=ZoneInfo(settings.timezone),
        window=settings.attribution_window,
    )
    return JSONResponse(done.as_json(), status_code=201 if done.recorded else 200)
