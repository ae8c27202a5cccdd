"""`POST /api/donations`: record a gift; `POST /api/donations/refunds` and
`/cancellations`: record what became of one since (API key, manager or admin)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from engine.api.deps import AppSettings, DbSession
from engine.api.responses import errors
from engine.api.staff import ApiManager
from engine.rules.gifts import (
    AMOUNT_MAX,
    AMOUNT_PATTERN,
    CURRENCY_PATTERN,
    FREQUENCY_PATTERN,
    ID_HIGHEST,
    ID_LOWEST,
    ID_MAX,
    MONTHLY_PATTERN,
    REQUIRED,
    STATUS_DATES,
    Change,
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
        # A monthly gift's payments name it; ending it ends those payments only.
        "subscription_id": _ID
        | {
            "type": ["string", "integer", "null"],
            "description": "a monthly gift only: the platform's id of the monthly gift this"
            " payment is of",
        },
    },
    # A gift that names a subscription (a number, or text more than blanks) is monthly.
    "if": {
        "required": ["subscription_id"],
        "properties": {
            "subscription_id": {"type": ["string", "integer"], "pattern": present_pattern()}
        },
    },
    "then": {
        "required": ["frequency"],
        "properties": {"frequency": {"type": "string", "pattern": MONTHLY_PATTERN}},
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
        secret=settings.keys,
        now=request.app.state.clock(),
        zone=ZoneInfo(settings.timezone),
        window=settings.attribution_window,
    )
    return JSONResponse(done.as_json(), status_code=201 if done.recorded else 200)


def _change_operation(change: Change) -> dict[str, Any]:
    """`router.post` arguments of a change: the body (the gift named by its external id, as
    in POST /api/donations, and the change's date under the webhook's name) and answers."""
    dated = STATUS_DATES[change]
    schema = {
        "type": "object",
        "required": ["external_id"],
        "additionalProperties": False,
        "properties": {
            "external_id": _ID | {"pattern": present_pattern()},
            dated: _VISIBLE
            | {
                "type": ["string", "null"],
                "format": "past-timestamp",
                "description": "ISO 8601 or dd/mm/yyyy, not before the gift; default (or"
                " null): now",
            },
        },
    }
    return {
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        },
        "responses": {
            200: {"description": "done; `already`: it was so before, its first date kept"},
            **errors(
                {
                    404: "no gift with that external id is recorded",
                    409: "the gift says otherwise: the date is before it, or it is one-off"
                    " (refunded, not cancelled)",
                    422: "a field is missing, unknown or invalid, or the date is in the future",
                }
            ),
        },
    }


def _change(
    request: Request, session: DbSession, settings: AppSettings, change: Change, body: Any
) -> dict[str, object]:
    return donations.change_one(
        session, change, body, now=request.app.state.clock(), zone=ZoneInfo(settings.timezone)
    )


@router.post("/donations/refunds", **_change_operation("refunded"))
def record_refund(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    _staff: ApiManager,
    body: Any = Body(
        ..., examples=[{"external_id": "pay_8F2k", "refunded_at": "2026-05-28T09:00:00+02:00"}]
    ),
) -> dict[str, object]:
    """Record the refund of a gift: from its date it no longer counts (as a gift, a last
    gift, a journey's goal); it stays attributed to its email."""
    return _change(request, session, settings, "refunded", body)


@router.post("/donations/cancellations", **_change_operation("cancelled"))
def record_cancellation(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    _staff: ApiManager,
    body: Any = Body(..., examples=[{"external_id": "pay_m_3Qx", "cancelled_at": "2026-06-30"}]),
) -> dict[str, object]:
    """Record the end of the monthly gift this payment belongs to, as the webhook's
    `monthly_cancelled` does: that gift's payments made by then (its `subscription_id`'s;
    the giver's monthly payments when the payment named none) stop making its giver a
    monthly donor from that date."""
    return _change(request, session, settings, "cancelled", body)
