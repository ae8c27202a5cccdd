"""The payment platform's signed webhook (`POST /webhooks/donations`), the pure part.

Signature scheme (docs/operations.md): the platform sends
`X-Mobilise-Timestamp: <Unix seconds>` and `X-Mobilise-Signature: v1=<hex>`, where hex
is HMAC-SHA256, keyed with MOBILISE_DONATIONS_WEBHOOK_SECRET, of the timestamp, a dot
and the raw body (`b"1767225600." + body`). A request signed more than five minutes
away from our clock is refused, so a captured request cannot be replayed later; within
those minutes the event id de-duplicates it (the route stores each id once).

The body is one event, a JSON object: `id` (the platform's, unique), `type` and `data`:
- `gift`: `data` is a gift in the vocabulary of engine.rules.gifts (one-off, or one
  payment of a monthly gift);
- `refund`: `data.external_id` names the gift, `data.refunded_at` (default: now);
- `monthly_cancelled`: `data.subscription_id` names the monthly gift (the one its payments
  named), or else `data.email` the giver (all their monthly gifts end);
  `data.cancelled_at` (default: now).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast, get_args

from engine.errors import Invalid, Problem, Unauthorized
from engine.rules.gifts import GIFT_FIELDS, ID_MAX, json_fields
from engine.track import stamps

TIMESTAMP_HEADER = "X-Mobilise-Timestamp"
SIGNATURE_HEADER = "X-Mobilise-Signature"
TOLERANCE = timedelta(minutes=5)
_VERSION = "v1="

EventType = Literal["gift", "refund", "monthly_cancelled"]
_FIELDS: dict[str, frozenset[str]] = {
    "refund": frozenset({"external_id", "refunded_at"}),
    "monthly_cancelled": frozenset({"subscription_id", "email", "cancelled_at"}),
}


class WebhookRefused(Unauthorized):
    """Not provably from the payment platform, or too old: answer 401, store nothing."""


@dataclass(frozen=True)
class DonationEvent:
    id: str
    type: EventType
    # The event's fields as text (engine.rules.gifts.json_fields).
    data: dict[str, str]


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The `X-Mobilise-Signature` value for a body signed at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256)
    return _VERSION + mac.hexdigest()


def verify(
    raw_body: bytes,
    *,
    signed: str | None,
    timestamp: str | None,
    secret: str,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Raise WebhookRefused unless the body is signed with `secret`, recently."""
    if not secret:
        raise WebhookRefused(
            "donations webhook refused: no secret configured",
            hint="set MOBILISE_DONATIONS_WEBHOOK_SECRET (docs/operations.md)",
        )
    if not signed or not timestamp:
        raise WebhookRefused(
            f"donations webhook refused: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} required"
        )
    try:
        signed_at = stamps.signed_at(timestamp)
    except (ValueError, OverflowError, OSError):
        raise WebhookRefused("donations webhook refused: malformed timestamp") from None
    if abs(now - signed_at) > tolerance:
        raise WebhookRefused(
            "donations webhook refused: timestamp outside the tolerance",
            hint=f"signed at {signed_at.isoformat()}, now {now.isoformat()}: check the clocks",
        )
    expected = signature(secret, timestamp, raw_body)
    # Several signatures may come (a platform rotating its secret): one must match.
    given = [part.strip() for part in signed.split(",")]
    # Constant-time: a timing difference would let a forger find the MAC byte by byte.
    if not any(hmac.compare_digest(expected.encode(), g.encode()) for g in given):
        raise WebhookRefused("donations webhook refused: bad signature")


def parse(raw_body: bytes) -> DonationEvent:
    """The event of a verified body; Invalid (422) naming what is wrong."""
    try:
        body = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"donations webhook body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("donations webhook body must be a JSON object: id, type, data")
    problems: list[Problem] = []
    event_id, kind, data = body.get("id"), body.get("type"), body.get("data")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > ID_MAX:
        problems.append(Problem(f"id: the event's id, a string of 1 to {ID_MAX}", field="id"))
    if kind not in get_args(EventType):
        problems.append(Problem(f"type: one of {', '.join(get_args(EventType))}", field="type"))
    unknown = set(body) - {"id", "type", "data"}
    if unknown:
        problems.append(Problem(f"unknown field(s): {', '.join(sorted(unknown))}"))
    if problems:
        raise Invalid(str(problems[0]), problems=problems)
    assert isinstance(event_id, str)
    event_type = cast(EventType, kind)
    values, problems = json_fields(data, fields=_FIELDS.get(event_type, GIFT_FIELDS))
    if problems:
        problems = [
            Problem(p.message, field=f"data.{p.field}" if p.field else "data", hint=p.hint)
            for p in problems
        ]
        raise Invalid(str(problems[0]), problems=problems)
    return DonationEvent(event_id.strip(), event_type, values)
