"""Double opt-in, the pure part: how a confirmation email sits in the outbox.

A petition with `double_opt_in` keeps each new web signature as a pending signature
(engine/store/confirmations.py) until its address is confirmed, and the engine sends it
the `confirm` template. That email is an outbox row like any other, so that the
dispatcher's leases and retries, the provider's events (a bounce suppresses the address),
the unsubscribe and rights links and erasure all apply to it; it belongs to no journey.
Its key (`outbox_key`) is the pending signature's id negated in place of an enrolment id:
enrolment ids are positive, so the two never meet under the outbox's UNIQUE key, and the
confirmation of one pending signature is queued once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

TEMPLATE = "confirm"
# A confirmation email's journey and step, as the outbox, its headers and the provider's
# events show them. No journey has this id: journey ids take no underscore.
JOURNEY = "double_opt_in"
STEP = "confirm"


def outbox_key(pending_id: int) -> tuple[int, str]:
    """(enrolment_id, step_id) of the confirmation email of pending signature `pending_id`."""
    return -pending_id, STEP


def pending_of(enrolment_id: int) -> int | None:
    """The pending signature an outbox row confirms, None for a journey email."""
    return -enrolment_id if enrolment_id < 0 else None


def expires_at(requested_at: datetime, days: int) -> datetime:
    """When a confirmation link stops working and an unconfirmed signature is purged."""
    return requested_at + timedelta(days=days)
