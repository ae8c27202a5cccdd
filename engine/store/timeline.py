"""A supporter's timeline for `explain`: what happened, what the engine did, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store import outbox
from engine.store.models import (
    Click,
    Consent,
    Donation,
    Enrolment,
    Event,
    OutboxMessage,
    Petition,
    Signature,
    Supporter,
    Suppression,
)

# Why an email was not sent, or sent later, in words a campaign manager reads.
REASONS = {
    "no-consent": "no consent to {detail}",
    "unsubscribed": "the address is suppressed for good (unsubscribe, hard bounce or complaint)",
    "blocked": "the address is blocked for a while (the provider refused our email)",
    "frequency-cap": "deferred by the frequency cap",
    "signed-too-long-ago": "skipped: signed longer ago than the step's max_signature_age",
    "quiet-hours": "deferred to the send window / out of quiet hours",
    "converted": "left: reached the goal (gave after entering)",
    "completed": "left: journey completed",
    "timeout": "left: the wait timed out",
}


def explain_reason(reason: str | None) -> str:
    if reason is None:
        return ""
    code, _, detail = reason.partition(":")
    return REASONS.get(code, reason).format(detail=detail)


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str
    detail: str = ""


def find_supporter(session: Session, email: str) -> Supporter | None:
    return session.scalar(select(Supporter).where(Supporter.email == email))


def timeline(session: Session, supporter_id: int) -> list[Entry]:
    """Everything known about one supporter, oldest first (one query per source table)."""
    entries: list[Entry] = []
    for slug, signed_at, enrol in session.execute(
        select(Petition.slug, Signature.signed_at, Signature.enrol)
        .join(Petition, Petition.id == Signature.petition_id)
        .where(Signature.supporter_id == supporter_id)
    ):
        note = "" if enrol else " (imported without --enrol: enters no journey)"
        entries.append(Entry(signed_at, f"signed '{slug}'{note}"))
    for purpose, granted, recorded_at in session.execute(
        select(Consent.purpose, Consent.granted, Consent.recorded_at).where(
            Consent.supporter_id == supporter_id
        )
    ):
        entries.append(
            Entry(recorded_at, f"consent '{purpose}' {'granted' if granted else 'refused'}")
        )
    cancellations: set[datetime] = set()
    for cents, currency, donated_at, frequency, refunded_at, cancelled_at in session.execute(
        select(
            Donation.amount_cents,
            Donation.currency,
            Donation.donated_at,
            Donation.frequency,
            Donation.refunded_at,
            Donation.cancelled_at,
        ).where(Donation.supporter_id == supporter_id)
    ):
        gift = f"{cents / 100:.2f} {currency}"
        entries.append(Entry(donated_at, f"gave {gift} ({frequency})"))
        if refunded_at is not None:
            entries.append(Entry(refunded_at, f"gift of {gift} refunded: it no longer counts"))
        if cancelled_at is not None:
            cancellations.add(cancelled_at)
    entries += [Entry(at, "monthly gift cancelled") for at in sorted(cancellations)]
    for reason, created_at, expires_at in session.execute(
        select(Suppression.reason, Suppression.created_at, Suppression.expires_at).where(
            Suppression.supporter_id == supporter_id
        )
    ):
        if expires_at is None:
            entries.append(Entry(created_at, f"suppressed: {reason}"))
        else:
            # The end of a block is an entry too: future entries come last.
            entries.append(
                Entry(created_at, f"suppressed: {reason} until {expires_at:%Y-%m-%d %H:%M} UTC")
            )
            entries.append(Entry(expires_at, f"suppression ends: {reason}"))
    for kind, occurred_at in session.execute(
        select(Event.kind, Event.occurred_at).where(Event.supporter_id == supporter_id)
    ):
        entries.append(Entry(occurred_at, f"event {kind}"))
    for step, position, clicked_at in session.execute(
        select(OutboxMessage.step_id, Click.link_position, Click.clicked_at)
        .join(OutboxMessage, OutboxMessage.id == Click.message_id)
        .where(Click.supporter_id == supporter_id)
    ):
        entries.append(Entry(clicked_at, f"clicked link {position} of '{step}'"))
    for row in session.scalars(select(Enrolment).where(Enrolment.supporter_id == supporter_id)):
        entries.append(
            Entry(row.entered_at, f"entered journey '{row.journey_id}' (entry {row.entry})")
        )
        if row.state == "active":
            due = f", next look at {row.due_at:%Y-%m-%d %H:%M} UTC" if row.due_at else ""
            waiting = session.scalar(
                select(OutboxMessage.step_id).where(
                    OutboxMessage.enrolment_id == row.id,
                    OutboxMessage.status.in_(outbox.AWAITING),
                    OutboxMessage.step_id != row.step_id,
                )
            )
            why = f"waits until the '{waiting}' email is sent" if waiting else ""
            entries.append(Entry(row.step_at, f"  now at step '{row.step_id}'{due}", why))
        elif row.exited_at is not None:
            entries.append(
                Entry(
                    row.exited_at,
                    f"left journey '{row.journey_id}' at step '{row.step_id}'",
                    explain_reason(row.exit_reason),
                )
            )
    for message in session.scalars(select(OutboxMessage).where(outbox.of_supporter(supporter_id))):
        variant = f" variant {message.variant}" if message.variant else ""
        what = f"email '{message.step_id}' ({message.template}{variant}) {message.status}"
        if message.status in ("queued", "held"):
            what += f", due {message.due_at:%Y-%m-%d %H:%M} UTC"
        entries.append(Entry(message.created_at, what, explain_reason(message.reason)))
    return sorted(entries, key=lambda e: e.at)
