"""SendGrid's signed event webhook, the pure part: verify, parse, order, suppress.

The route (`POST /webhooks/sendgrid`) calls, in this order: `verify` on the raw body and
the two signature headers, `parse` on the same raw body, then for each event stores it
de-duplicated by `dedup_key`, moves the message state only when `supersedes` says so,
and records `suppression_for` when it returns one. SendGrid retries a batch for 24 h
until it gets a 2xx, and repeats events even then: every step must be idempotent.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, get_args

from sendgrid.helpers.eventwebhook import EventWebhook

from engine.errors import Invalid, Unauthorized, Unavailable
from engine.rules.tabular import UNSEEN
from engine.track import stamps

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
REPLAY_WINDOW = timedelta(minutes=10)

EventType = Literal[
    "processed",
    "deferred",
    "delivered",
    "open",
    "click",
    "bounce",
    "dropped",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))

# Out-of-order events: a message's state only moves up this ladder (equal rank: later
# timestamp wins). Final outcomes outrank engagement, which outranks delivery.
PRECEDENCE: dict[str, int] = {
    "processed": 10,
    "deferred": 20,
    "delivered": 30,
    "open": 40,
    "click": 50,
    "unsubscribe": 80,
    "group_unsubscribe": 80,
    "dropped": 90,
    "bounce": 90,
    "spamreport": 95,
}

# Fields SendGrid itself writes into an event; everything else is one of our custom_args.
_STANDARD_FIELDS = frozenset(
    {
        "email", "timestamp", "smtp-id", "event", "category", "sg_event_id", "sg_message_id",
        "response", "attempt", "useragent", "ip", "url", "url_offset", "reason", "status",
        "type", "bounce_classification", "asm_group_id", "tls", "cert_err", "pool",
        "send_at", "sg_machine_open", "sg_content_type", "sg_template_id",
        "sg_template_name", "marketing_campaign_id", "marketing_campaign_name",
        "marketing_campaign_version", "marketing_campaign_split_id", "singlesend_id",
        "singlesend_name", "template_id", "template_version_id", "template_hash",
    }
)  # fmt: skip

# `dropped` reasons that say something about the address (others are about our content).
_DROP_SUPPRESSIONS = {
    "bounced address": "bounce",
    "unsubscribed address": "unsubscribe",
    "spam reporting address": "complaint",
    "invalid": "invalid_address",
}
# A block is usually about our reputation or content rather than the address: suppress
# for a while instead of forever, so that supporters are not silently lost. How long is a
# setting (MOBILISE_BLOCK_SUPPRESSION_DAYS, 7 by default): the route passes it.


class WebhookRefused(Unauthorized):
    """The request is not provably from SendGrid, or is too old: answer 401, store nothing."""


class WebhookNotConfigured(Unavailable):
    """No public key to check signatures with: answer 503 (SendGrid retries for 24 hours,
    so nothing is lost once the key is set) and store nothing."""


@dataclass(frozen=True)
class ProviderEvent:
    event: str
    dedup_key: str
    occurred_at: datetime
    email: str
    sg_event_id: str | None = None
    sg_message_id: str | None = None
    mobilise_message_id: str | None = None
    custom_args: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    bounce_type: str | None = None
    url: str | None = None
    categories: tuple[str, ...] = ()
    asm_group_id: int | None = None
    # An open fetched by a privacy proxy (Apple Mail Privacy Protection), not a reader.
    machine_open: bool = False

    @property
    def provider_request_id(self) -> str | None:
        """The X-Message-Id of the request that carried the message (before the first dot)."""
        return self.sg_message_id.split(".", 1)[0] if self.sg_message_id else None


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str  # bounce | blocked | invalid_address | complaint | unsubscribe
    occurred_at: datetime
    lift_after: timedelta | None = None  # None: for good
    asm_group_id: int | None = None


def check_public_key(public_key: str) -> None:
    """Raise `Invalid` now, at start-up, if the configured key could never verify anything."""
    if public_key:
        _verifier(public_key)


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    try:
        return EventWebhook(public_key)
    except (ValueError, TypeError) as exc:
        raise Invalid(
            "MOBILISE_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid ECDSA public key",
            hint="paste the base64 key shown under Mail Settings → Event Webhook",
        ) from exc


def verify(
    raw_body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    public_key: str,
    env: str | None,
    now: datetime,
    window: timedelta = REPLAY_WINDOW,
) -> bool:
    """Refuse (raise `WebhookRefused`) unless the body is signed by SendGrid, and recent.

    Returns True when the signature was checked, False when no key is configured and
    MOBILISE_ENV=development says to take unsigned events (for local work only); without
    a key in any other mode, raise `WebhookNotConfigured`.
    """
    if not public_key:
        if env != "development":
            raise WebhookNotConfigured(
                "event webhook refused: no public key configured",
                hint="set MOBILISE_SENDGRID_WEBHOOK_PUBLIC_KEY (Mail Settings → Event Webhook)",
            )
        return False
    if not signature or not timestamp:
        raise WebhookRefused("event webhook refused: signature headers missing")
    try:
        signed_at = stamps.signed_at(timestamp)
    except (ValueError, OverflowError, OSError) as exc:
        raise WebhookRefused("event webhook refused: malformed timestamp") from exc
    if abs(now - signed_at) > window:
        raise WebhookRefused(
            "event webhook refused: timestamp outside the replay window",
            hint=f"signed at {signed_at.isoformat()}, now {now.isoformat()}",
        )
    try:
        payload = raw_body.decode("utf-8")
        valid = bool(_verifier(public_key).verify_signature(payload, signature, timestamp))
    except (UnicodeDecodeError, binascii.Error, ValueError, TypeError):
        valid = False
    if not valid:
        raise WebhookRefused("event webhook refused: bad signature")
    return True


def parse(raw_body: bytes) -> tuple[list[ProviderEvent], list[str]]:
    """The events of a batch, and a description of each item that could not be read.

    Unreadable items are reported rather than fatal: failing the batch would make
    SendGrid retry the good events along with the bad one for 24 hours. An item is
    unreadable when it lacks a field, has one of the wrong type, a timestamp no date can
    hold, or an identifier (event id, address) that is too long or carries control or
    invisible characters: SendGrid sends none of these, and stored they would make the
    database refuse the whole batch.
    """
    try:
        items = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"event webhook body is not JSON: {exc}") from exc
    if not isinstance(items, list):
        raise Invalid("event webhook body must be a JSON array of events")
    events: list[ProviderEvent] = []
    skipped: list[str] = []
    for position, item in enumerate(items):
        try:
            events.append(parse_event(item))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            skipped.append(f"event {position}: {exc!r}")
    return events, skipped


def parse_event(item: Any) -> ProviderEvent:
    if not isinstance(item, dict):
        raise TypeError("an event must be a JSON object")
    kind = item["event"]
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {str(kind)[:40]!r}")
    sg_event_id = _identifier(item.get("sg_event_id"), "sg_event_id")
    category = item.get("category")
    categories = (
        tuple(category) if isinstance(category, list) else ((category,) if category else ())
    )
    custom_args = {
        key: value
        for key, value in item.items()
        if key not in _STANDARD_FIELDS and isinstance(value, str)
    }
    asm_group_id = item.get("asm_group_id")
    return ProviderEvent(
        event=kind,
        dedup_key=sg_event_id or _content_key(item),
        occurred_at=_occurred_at(item["timestamp"]),
        email=(_identifier(item["email"], "email") or "").strip().lower(),
        sg_event_id=sg_event_id,
        sg_message_id=_text(item.get("sg_message_id")),
        mobilise_message_id=custom_args.get("mobilise_message_id"),
        custom_args=custom_args,
        reason=_readable(_text(item.get("reason")) or _text(item.get("response"))),
        bounce_type=_text(item.get("type")),
        url=_text(item.get("url")),
        categories=tuple(str(c) for c in categories),
        asm_group_id=asm_group_id if isinstance(asm_group_id, int) else None,
        machine_open=item.get("sg_machine_open") is True,
    )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


# An event id ends up in a key of at most 200 characters (`sendgrid:<id>`); SendGrid's
# are about 48, addresses at most 254.
_IDENTIFIER_MAX = 190


def _identifier(value: object, name: str) -> str | None:
    """Text that identifies something (an event, an address): refused, not cleaned."""
    text = _text(value)
    if text is None:
        return None
    if not isinstance(value, str) or len(text) > _IDENTIFIER_MAX or UNSEEN.search(text):
        raise ValueError(f"{name}: not an identifier SendGrid sends")
    return text


def _readable(text: str | None) -> str | None:
    """Free text from the provider (an SMTP answer), kept, its unseen characters shown."""
    return UNSEEN.sub("\ufffd", text) if text is not None and UNSEEN.search(text) else text


def _occurred_at(value: object) -> datetime:
    """A Unix timestamp (SendGrid sends integers) within the years a datetime holds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("timestamp: a number of seconds")
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp: {str(value)[:40]} is not a date") from None


def _content_key(item: dict[str, Any]) -> str:
    """A stable key for an event without `sg_event_id`: a hash of its canonical JSON."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def supersedes(
    incoming: ProviderEvent, current_event: str | None, current_at: datetime | None
) -> bool:
    """Whether `incoming` should become the message's state, given the state it has now."""
    rank = PRECEDENCE.get(incoming.event)
    if rank is None:
        return False
    if current_event is None:
        return True
    current_rank = PRECEDENCE.get(current_event, 0)
    if rank != current_rank:
        return rank > current_rank
    return current_at is None or incoming.occurred_at > current_at


def suppression_for(event: ProviderEvent, *, block_for: timedelta) -> Suppression | None:
    """The suppression an event implies, if any: for good, except a block (`block_for`)."""
    reason: str | None = None
    lift_after: timedelta | None = None
    if event.event == "bounce":
        if event.bounce_type == "blocked":
            reason, lift_after = "blocked", block_for
        else:
            reason = "bounce"
    elif event.event == "dropped":
        reason = _DROP_SUPPRESSIONS.get((event.reason or "").strip().lower())
    elif event.event == "spamreport":
        reason = "complaint"
    elif event.event in ("unsubscribe", "group_unsubscribe"):
        reason = "unsubscribe"
    if reason is None:
        return None
    return Suppression(
        email=event.email,
        reason=reason,
        occurred_at=event.occurred_at,
        lift_after=lift_after,
        asm_group_id=event.asm_group_id if event.event == "group_unsubscribe" else None,
    )
