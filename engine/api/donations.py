"""`POST /api/donations`: record a gift (API key, manager or admin)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from engine.api.deps import AppSettings, DbSession
from engine.api.staff import ApiManager
from engine.rules.gifts import ID_MAX, REQUIRED
from engine.rules.tabular import visible_pattern
from engine.track import donations

router = APIRouter(prefix="/api", tags=["donations"])

_VISIBLE = {"type": "string", "pattern": visible_pattern()}
_ID = _VISIBLE | {"maxLength": ID_MAX}
# The gift as JSON, in the CSV's vocabulary (engine/rules/gifts.py). Stated: the fields,
# which are required, their types, lengths, the currency's and the amount's shape, and no
# control or invisible character. Not stated, refused with a 422 naming the field: an
# address email-validator refuses, a date in the future, a zero amount.
_GIFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    # The API dates a gift without `donated_at` at its arrival (track/donations.record_one).
    "required": [name for name in REQUIRED if name != "donated_at"],
    "additionalProperties": False,
    "properties": {
        "email": _VISIBLE | {"minLength": 1, "maxLength": 320},
        "amount": {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 9_999_999},
                _VISIBLE | {"pattern": r"^\s*\d{1,7}([.,]\d{1,2})?\s*(€|EUR|eur)?\s*$"},
            ],
            "description": 'euros: 30, 30.5, "30,50"; more than zero',
        },
        # Blank or null: EUR.
        "currency": {"type": ["string", "null"], "pattern": r"^\s*([A-Za-z]{3})?\s*$"},
        "donated_at": _VISIBLE
        | {
            "type": ["string", "null"],
            "description": "ISO 8601 or dd/mm/yyyy, not in the future; default (or null): now",
        },
        # The CSV's aliases are taken too, in any case (engine/rules/gifts.py): not an enum.
        "frequency": {
            "type": ["string", "null"],
            "examples": ["one-off", "monthly"],
            "description": "one-off (default) or monthly; also ponctuel, mensuel...",
        },
        # A payment platform's ids may be numbers: taken as written.
        "external_id": _ID | {"type": ["string", "number"], "minLength": 1},
        "reference": _ID | {"type": ["string", "number", "null"]},
    },
}


@router.post(
    "/donations",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _GIFT_SCHEMA}}}
    },
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
