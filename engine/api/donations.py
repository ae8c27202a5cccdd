"""`POST /api/donations`: record a gift (API key, manager or admin)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from engine.api.deps import AppSettings, DbSession
from engine.api.staff import ApiManager
from engine.rules.gifts import (
    AMOUNT_MAX,
    AMOUNT_PATTERN,
    CURRENCY_PATTERN,
    FREQUENCY_PATTERN,
    ID_HIGHEST,
    ID_LOWEST,
    ID_MAX,
    REQUIRED,
)
from engine.rules.supporters import EMAIL_SCHEMA
from engine.rules.tabular import present_pattern, visible_pattern
from engine.track import donations

router = APIRouter(prefix="/api", tags=["donations"])

_VISIBLE = {"type": "string", "pattern": visible_pattern()}
# An id or a reference: visible text, or a whole number within 10^15 (engine/rules/gifts.py).
# One schema of two types (a keyword applies to the values of its own type), rather than a
# oneOf of two: what generators of clients and of tests read alike.
_ID = {
    "type": ["string", "integer"],
    "pattern": visible_pattern(),
    "maxLength": ID_MAX,
    "minimum": ID_LOWEST,
    "maximum": ID_HIGHEST,
}
# The gift as JSON, in the CSV's vocabulary (engine/rules/gifts.py), stated exactly: the
# fields, which are required, their types, lengths and shapes (the patterns are the
# server's own), no control or invisible character. Two rules are formats a pattern cannot
# say: `email` is an address email-validator takes (the supporters' rule), `past-timestamp`
# a date the server reads (ISO 8601 or dd/mm/yyyy) from 1900 to now.
_GIFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    # The API dates a gift without `donated_at` at its arrival (track/donations.record_one).
    "required": [name for name in REQUIRED if name != "donated_at"],
    "additionalProperties": False,
    "properties": {
        "email": EMAIL_SCHEMA,
        "amount": {
            "type": ["number", "string"],
            "exclusiveMinimum": 0,
            "maximum": AMOUNT_MAX,
            "multipleOf": 0.01,
            "pattern": AMOUNT_PATTERN,
            "description": 'euros, more than zero, at most two decimals: 30, 30.5, "30,50",'
            ' "1 000,00 €"',
        },
        # Blank or null: EUR.
        "currency": {"type": ["string", "null"], "pattern": CURRENCY_PATTERN},
        "donated_at": _VISIBLE
        | {
            "type": ["string", "null"],
            "format": "past-timestamp",
            "description": "ISO 8601 or dd/mm/yyyy, from 1900 to now; default (or null): now",
        },
        # The CSV's aliases are taken too, in any case (engine/rules/gifts.py).
        "frequency": {
            "type": ["string", "null"],
            "pattern": FREQUENCY_PATTERN,
            "examples": ["one-off", "monthly"],
            "description": "one-off (default) or monthly; also ponctuel, mensuel...",
        },
        "external_id": _ID | {"pattern": present_pattern()},
        "reference": _ID | {"type": ["string", "integer", "null"]},
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
