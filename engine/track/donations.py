"""Gifts in, whatever the door: `mobilise import donations` (engine.intake.gift_imports),
`POST /api/donations` and the payment platform's webhook all validate with
engine.rules.gifts and record here, attributed to the email that brought them.

A gift from an address nobody signed with is kept: its giver becomes a supporter without
consents, and the report says how many. A reference we did not make (or garbled) is
reported and ignored: the gift is then attributed by the giver's last click.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.errors import Invalid, NotFound
from engine.render import tokens
from engine.rules.gifts import GiftRow, json_fields, parse_gift
from engine.rules.signature_rows import RowError
from engine.rules.supporters import parse_email
from engine.rules.tabular import parse_timestamp
from engine.store import donations, events
from engine.store.donations import DonationRow, Recorded
from engine.track.donation_webhook import DonationEvent


def record_gifts(
    session: Session,
    gifts: Iterable[GiftRow],
    *,
    secret: str,
    now: datetime,
    window: timedelta,
) -> tuple[Recorded, int]:
    """Record validated gifts (external ids unique among them); returns what was done and
    how many references were not ours."""
    rows: list[DonationRow] = []
    unknown = 0
    for gift in gifts:
        message_id = tokens.read_reference(secret, gift.reference) if gift.reference else None
        if gift.reference is not None and message_id is None:
            unknown += 1
        rows.append(
            DonationRow(
                gift.email,
                gift.amount_cents,
                gift.currency,
                gift.donated_at,
                gift.frequency,
                gift.external_id,
                message_id,
            )
        )
    return donations.record(session, rows, now=now, window=window), unknown


@dataclass(frozen=True)
class OneGift:
    """What recording one gift (API, webhook) did, as the JSON answer says it."""

    external_id: str
    recorded: bool  # False: a gift with that external id was there already
    new_supporter: bool
    message_id: int | None
    attributed_by: str | None
    unknown_reference: bool

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def record_one(
    session: Session,
    body: object,
    *,
    secret: str,
    now: datetime,
    zone: ZoneInfo,
    window: timedelta,
) -> OneGift:
    """A gift given as JSON (the vocabulary of the CSV columns; `donated_at` defaults to
    `now`); Invalid (422) naming the fields at fault."""
    values, problems = json_fields(body)
    if problems:
        raise Invalid(str(problems[0]), problems=problems)
    values.setdefault("donated_at", now.isoformat())
    try:
        gift = parse_gift(values, now=now, zone=zone)
    except RowError as exc:
        raise Invalid(str(exc), field=exc.field) from None
    recorded, unknown = record_gifts(session, [gift], secret=secret, now=now, window=window)
    message_id, attributed_by = donations.attribution(session, gift.external_id)
    return OneGift(
        gift.external_id,
        bool(recorded.imported),
        bool(recorded.new_supporters),
        message_id,
        attributed_by,
        bool(unknown),
    )


# What names the gift a change applies to, and the change's date, by kind of change.
_CHANGES = {
    "refund": ("external_id", "refunded_at"),
    "monthly_cancelled": ("email", "cancelled_at"),
}


def apply_change(
    session: Session, kind: str, data: Mapping[str, str], *, now: datetime, zone: ZoneInfo
) -> dict[str, object]:
    """A refund (`external_id`, `refunded_at`) or a cancelled monthly gift (`email`,
    `cancelled_at`), dated `now` when the date is not given. NotFound when the gift is not
    recorded (yet): the caller answers 404 and stores nothing, so the platform retries."""
    key, dated = _CHANGES[kind]
    target = data.get(key, "").strip()
    if not target:
        raise Invalid(f"data.{key}: missing", field=f"data.{key}")
    try:
        at = parse_timestamp(data.get(dated, ""), zone) or now
    except ValueError as exc:
        raise Invalid(f"data.{dated}: {exc}", field=f"data.{dated}") from None
    if key == "email":
        try:
            target = parse_email(target)
        except ValueError as exc:
            raise Invalid(f"data.email: {exc}", field="data.email") from None
    if kind == "refund":
        outcome = donations.refund(session, external_id=target, at=at)
    else:
        outcome = donations.cancel_monthly(session, email=target, at=at)
    if outcome == "unknown":
        what = "gift with external_id" if kind == "refund" else "monthly gift from"
        raise NotFound(
            f"no {what} {target!r} recorded by {at.isoformat()}",
            field=f"data.{key}",
            hint="nothing was stored; the platform's retry applies it once the gift is recorded",
        )
    return {
        "outcome": "refunded" if kind == "refund" else "cancelled",
        "already": outcome == "already",
    }


def apply_webhook_event(
    session: Session,
    event: DonationEvent,
    *,
    secret: str,
    now: datetime,
    zone: ZoneInfo,
    window: timedelta,
) -> dict[str, object]:
    """Apply one event of the payment platform's webhook, at most once per event id: a
    replayed event answers `duplicate` and changes nothing."""
    # First, in the transaction that applies it: the event id's key is UNIQUE.
    if not events.append(
        session,
        kind=f"donation.{event.type}",
        source_key=f"donations-webhook:{event.id}",
        occurred_at=now,
        payload={"event": event.id, "external_id": event.data.get("external_id")},
    ):
        return {"event": event.id, "outcome": "duplicate"}
    if event.type == "gift":
        done = record_one(session, event.data, secret=secret, now=now, zone=zone, window=window)
        outcome = {"outcome": "recorded" if done.recorded else "already", **done.as_json()}
    else:
        outcome = apply_change(session, event.type, event.data, now=now, zone=zone)
    return {"event": event.id, **outcome}
