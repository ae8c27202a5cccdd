"""Provider events in: a verified SendGrid batch stored once, message states moved forward
only, and the suppressions its events imply.

engine.track.sendgrid_events reads, ranks and interprets SendGrid's events; the store
(engine.store.deliveries) writes them set-based with those rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session

from engine.config import Secret
from engine.store import deliveries
from engine.store.deliveries import Applied
from engine.track import sendgrid_events
from engine.track.sendgrid_events import ProviderEvent


def apply_sendgrid(
    session: Session,
    events: Sequence[ProviderEvent],
    *,
    now: datetime,
    block_for: timedelta,
    secret: Secret,
) -> Applied:
    """Store a batch in the caller's transaction (the webhook answers 2xx after commit).
    A block suppresses for `block_for` from the event; other suppressions are for good."""
    return deliveries.apply(
        session,
        events,
        provider="sendgrid",
        now=now,
        supersedes=sendgrid_events.supersedes,
        suppression=partial(sendgrid_events.suppression_for, block_for=block_for),
        secret=secret,
    )
