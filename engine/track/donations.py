"""Gifts in, whatever the door: `mobilise import donations` (engine.intake.gift_imports),
`POST /api/donations` and the payment platform's webhook all validate with
engine.rules.gifts and record here, attributed to the email that brought them.

Refunds and cancelled monthly gifts come from the webhook (`apply_change`), and, naming
the gift by its external id, from a file's `status` column and from
`POST /api/donations/refunds` and `/cancellations` (`change_gift`; a file's batch at once,
`change_gifts`); all apply them with the same store functions,
engine.store.donations.refund_many (through `refund` for the webhook) and cancel_monthly.

A gift from an address nobody signed with is kept: its giver becomes a supporter without
consents, and the report says how many. A reference we did not make (or garbled) is
reported and ignored: the gift is then attributed by the giver's last click.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.config import Secret
from engine.errors import Conflict, Invalid, MobiliseError, NotFound
from engine.render import tokens
from engine.rules.gifts import (
    STATUS_DATES,
    Change,
    GiftRow,
    change_date_problem,
    json_fields,
    parse_gift,
)
from engine.rules.signature_rows import RowError
from engine.rules.supporters import parse_email
from engine.rules.tabular import parse_timestamp
from engine.store import donations, events
from engine.store.donations import DonationRow, GiftState, Outcome, Recorded
from engine.track.donation_webhook import DonationEvent


def record_gifts(
    session: Session,
    gifts: Iterable[GiftRow],
    *,
    secret: Secret,
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
                gift.subscription_id,
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
    secret: Secret,
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


def change_gift(
    session: Session, external_id: str, change: Change, *, at: datetime | None, now: datetime
) -> Outcome:
    """Refund the gift with this external id, or end the monthly gift it is a payment of
    (its subscription's payments made by then; for a payment that names no subscription,
    its giver's monthly payments, as the webhook's `monthly_cancelled` by `email`), dated
    `at` (None: `now`). `already` when it was so: a repeated change keeps the
    first date. NotFound naming the id when no gift has it; Invalid for a date after
    `now`; Conflict when the gift says otherwise (dated before it, a one-off gift
    cancelled)."""
    (outcome,) = change_gifts(session, [(external_id, change, at)], now=now)
    if isinstance(outcome, MobiliseError):
        raise outcome
    return outcome


def change_gifts(
    session: Session,
    changes: Sequence[tuple[str, Change, datetime | None]],
    *,
    now: datetime,
) -> list[Outcome | MobiliseError]:
    """`change_gift` for each (external id, change, date), in order, each getting its
    outcome or its error: a file's batch of refunds in one read of the gifts and one
    statement (engine.store.donations.refund_many); a cancellation ends its monthly gift's
    payments on its own."""
    found = donations.states(session, {external_id for external_id, _, _ in changes})
    outcomes: list[Outcome | MobiliseError] = []
    refunds: dict[str, datetime] = {}
    for external_id, change, at in changes:
        gift = found.get(external_id)
        when = now if at is None else at
        try:
            outcome = _change(gift, external_id, change, when, now=now)
        except MobiliseError as exc:
            outcomes.append(exc)
            continue
        assert gift is not None  # `_change` refused an unknown gift
        if outcome == "done" and change == "refunded":
            refunds[external_id] = when
            found[external_id] = replace(gift, refunded_at=when)
        elif outcome == "done":
            outcome = donations.cancel_monthly(
                session, at=when, email=gift.email, subscription=gift.subscription_id
            )
        outcomes.append(outcome)
    donations.refund_many(session, refunds)
    return outcomes


def _change(
    gift: GiftState | None, external_id: str, change: Change, when: datetime, *, now: datetime
) -> Outcome:
    """Whether the change is to be made (`done`) or was made (`already`), or why not."""
    if gift is None:
        raise NotFound(
            f"no gift with external_id {external_id!r} is recorded",
            field="external_id",
            hint="record the gift first (POST /api/donations, or a file with its status)",
        )
    dated = STATUS_DATES[change]
    problem = change_date_problem(when, donated_at=gift.donated_at, now=now)
    if problem is not None:
        # In the future, the request is wrong (422); before the gift, it contradicts it (409).
        raise (Invalid if when > now else Conflict)(f"{dated}: {problem}", field=dated)
    if change == "refunded":
        return "already" if gift.refunded_at is not None else "done"
    if gift.frequency != "monthly":
        raise Conflict(
            f"gift {external_id!r} is one-off: a one-off gift is refunded, not cancelled",
            field="external_id",
        )
    if gift.cancelled_at is not None:
        return "already"
    if gift.email is None and gift.subscription_id is None:
        raise Conflict(
            f"the giver of gift {external_id!r} was erased and it names no subscription:"
            " nothing to cancel",
            field="external_id",
        )
    return "done"


def change_one(
    session: Session, change: Change, body: object, *, now: datetime, zone: ZoneInfo
) -> dict[str, object]:
    """A refund (`external_id`, `refunded_at`) or a cancellation (`external_id`,
    `cancelled_at`) given as JSON, the date defaulting to `now`; Invalid (422) naming the
    field at fault, NotFound (404) naming an unknown external id, Conflict (409) when the
    gift says otherwise."""
    dated = STATUS_DATES[change]
    values, problems = json_fields(body, fields=frozenset(("external_id", dated)))
    if problems:
        raise Invalid(str(problems[0]), problems=problems)
    external_id = values.get("external_id", "").strip()
    if not external_id:
        raise Invalid("external_id: missing", field="external_id")
    try:
        at = parse_timestamp(values.get(dated, ""), zone)
    except ValueError as exc:
        raise Invalid(f"{dated}: {exc}", field=dated) from None
    outcome = change_gift(session, external_id, change, at=at, now=now)
    return {"external_id": external_id, "outcome": change, "already": outcome == "already"}


# What may name the gift a change applies to (the first given is taken), and the change's
# date, by kind of change.
_CHANGES = {
    "refund": (("external_id",), "refunded_at"),
    "monthly_cancelled": (("subscription_id", "email"), "cancelled_at"),
}


def apply_change(
    session: Session, kind: str, data: Mapping[str, str], *, now: datetime, zone: ZoneInfo
) -> dict[str, object]:
    """A refund (`external_id`, `refunded_at`) or a cancelled monthly gift (its
    `subscription_id`, else its giver's `email`: all their monthly gifts; `cancelled_at`),
    dated `now` when the date is not given. NotFound when the gift is not recorded (yet):
    the caller answers 404 and stores nothing, so the platform retries."""
    keys, dated = _CHANGES[kind]
    given = {k: data[k].strip() for k in keys if data.get(k, "").strip()}
    if not given:
        said = " or ".join(f"data.{k}" for k in keys)
        raise Invalid(f"{said}: missing", field=f"data.{keys[0]}")
    key, target = next(iter(given.items()))  # what names it first, for the 404
    try:
        at = parse_timestamp(data.get(dated, ""), zone) or now
    except ValueError as exc:
        raise Invalid(f"data.{dated}: {exc}", field=f"data.{dated}") from None
    if "email" in given:
        try:
            given["email"] = parse_email(given["email"])
        except ValueError as exc:
            raise Invalid(f"data.email: {exc}", field="data.email") from None
    if kind == "refund":
        outcome = donations.refund(session, external_id=target, at=at)
    else:  # both when given: the subscription's payments of that giver (store/donations.py)
        outcome = donations.cancel_monthly(
            session, at=at, email=given.get("email"), subscription=given.get("subscription_id")
        )
    if outcome == "unknown":
        what = {
            "external_id": "gift with external_id",
            "email": "monthly gift from",
            "subscription_id": "monthly gift with subscription_id",
        }[key]
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
    secret: Secret,
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
        # What names the gift, never the address: a monthly gift's subscription, if said.
        payload={
            "event": event.id,
            "external_id": event.data.get("external_id"),
            "subscription_id": event.data.get("subscription_id"),
        },
    ):
        return {"event": event.id, "outcome": "duplicate"}
    if event.type == "gift":
        done = record_one(session, event.data, secret=secret, now=now, zone=zone, window=window)
        outcome = {"outcome": "recorded" if done.recorded else "already", **done.as_json()}
    else:
        outcome = apply_change(session, event.type, event.data, now=now, zone=zone)
    return {"event": event.id, **outcome}
