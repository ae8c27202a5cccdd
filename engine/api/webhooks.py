"""`POST /webhooks/sendgrid`: signed provider events, stored before the 2xx."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.api.deps import AppSettings, get_sessions
from engine.store import deliveries
from engine.track import sendgrid_events

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = logging.getLogger(__name__)


@router.post(
    "/sendgrid",
    responses={
        401: {"description": "unsigned, badly signed or stale"},
        413: {"description": "body over MOBILISE_WEBHOOK_MAX_BYTES"},
        503: {"description": "no public key configured, or the database is unavailable"},
    },
)
async def sendgrid(request: Request, settings: AppSettings) -> JSONResponse:
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
        applied = deliveries.apply(
            session,
            events,
            provider="sendgrid",
            now=now,
            supersedes=sendgrid_events.supersedes,  # type: ignore[arg-type]
            suppression=partial(_suppression, block_for=settings.block_suppression),
        )
    if applied.unknown_messages:
        log.info("sendgrid webhook: %d events for unknown messages", applied.unknown_messages)
    return JSONResponse(
        {"stored": applied.stored, "duplicates": applied.duplicates, "skipped": len(skipped)}
    )


def _suppression(
    event: deliveries.DeliveryEvent, *, block_for: timedelta
) -> sendgrid_events.Suppression | None:
    assert isinstance(event, sendgrid_events.ProviderEvent)
    return sendgrid_events.suppression_for(event, block_for=block_for)
