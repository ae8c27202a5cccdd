"""Signed webhooks, stored before the 2xx: `POST /webhooks/sendgrid` (provider events) and
`POST /webhooks/donations` (the payment platform's gifts, refunds and cancellations)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from engine.api.deps import AppSettings, get_sessions
from engine.api.responses import errors
from engine.track import donation_webhook, donations, provider_events, sendgrid_events

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)


class WebhookStored(BaseModel):
    stored: int
    duplicates: int
    skipped: int


_EVENTS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {},
                    "description": (
                        "SendGrid's event batch, signed (X-Twilio-Email-Event-Webhook-Signature"
                        " and -Timestamp). An item that is not an event SendGrid sends (a field"
                        " missing or of the wrong type, a timestamp no date can hold, an event id"
                        " or address with control or invisible characters) is skipped and"
                        " counted in `skipped`; the others are stored. The batch is refused"
                        " only when it is not a JSON array."
                    ),
                    "example": [
                        {
                            "email": "zoe@example.org",
                            "timestamp": 1715600000,
                            "event": "delivered",
                            "sg_event_id": "ZGVsaXZlcmVk",
                            "sg_message_id": "abc.filter0001.1.0",
                            "mobilise_message_id": "42",
                        }
                    ],
                }
            }
        },
    }
}


@router.post(
    "/sendgrid",
    openapi_extra=_EVENTS_BODY,
    responses=errors(
        {
            401: "unsigned, badly signed or stale",
            413: "body over MOBILISE_WEBHOOK_MAX_BYTES",
            422: "the body is not a JSON array",
            503: "no public key configured, or the database is unavailable",
        }
    ),
)
async def sendgrid(request: Request, settings: AppSettings) -> WebhookStored:
    """Verify the signature on the raw body, then store the batch. A database failure
    answers 5xx so that SendGrid retries; events for unknown messages are kept and logged."""
    raw = await request.body()
    now = datetime.now(UTC)
    sendgrid_events.verify(
        raw,
        signature=request.headers.get(sendgrid_events.SIGNATURE_HEADER),
        timestamp=request.headers.get(sendgrid_events.TIMESTAMP_HEADER),
        public_key=settings.sendgrid_webhook_public_key,
        env=settings.env,
        now=now,
    )
    events, skipped = sendgrid_events.parse(raw)
    for problem in skipped:
        log.warning("sendgrid webhook: unreadable %s", problem)
    with get_sessions(request).begin() as session:
        applied = provider_events.apply_sendgrid(
            session,
            events,
            now=now,
            block_for=settings.block_suppression,
            secret=settings.keys,
        )
    if applied.unknown_messages:
        log.info("sendgrid webhook: %d events for unknown messages", applied.unknown_messages)
    return WebhookStored(stored=applied.stored, duplicates=applied.duplicates, skipped=len(skipped))


@router.post(
    "/donations",
    responses={
        401: {"description": "unsigned, badly signed, or signed too long ago"},
        404: {"description": "a refund or cancellation of a gift not recorded (yet): retry"},
        422: {"description": "not an event this webhook takes"},
    },
)
async def donations_webhook(request: Request, settings: AppSettings) -> JSONResponse:
    """One event of the payment platform, HMAC-signed (docs/operations.md). Each event id
    is applied once: a replayed event answers `duplicate` and changes nothing."""
    raw = await request.body()
    now: datetime = request.app.state.clock()
    donation_webhook.verify(
        raw,
        signed=request.headers.get(donation_webhook.SIGNATURE_HEADER),
        timestamp=request.headers.get(donation_webhook.TIMESTAMP_HEADER),
        secret=settings.donations_webhook_secret,
        now=now,
    )
    event = donation_webhook.parse(raw)
    with get_sessions(request).begin() as session:
        outcome = donations.apply_webhook_event(
            session,
            event,
            secret=settings.keys,
            now=now,
            zone=ZoneInfo(settings.timezone),
            window=settings.attribution_window,
        )
    return JSONResponse(outcome)
