"""Emails, clicks and gifts written straight into the tables, as the tracking and gift
paths write them, each followed by the same `counts` call those paths make; provider
events through the webhook's own store function."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from engine.store import counts, deliveries
from engine.store.models import Click, Donation, OutboxMessage, Supporter
from engine.track import sendgrid_events
from engine.track.sendgrid_events import ProviderEvent
from tests.factories import unique

SECRET = "counts-test-secret"


def emails(
    session: Session,
    now: datetime,
    steps: list[tuple[str, str, str | None]],
    *,
    status: str = "sending",
) -> list[int]:
    """One outbox row per (journey, step, variant), each to a new supporter, claimed by
    worker `w` (status `sending`) unless told otherwise; returns their ids."""
    ids = []
    for journey, step, variant in steps:
        supporter = Supporter(email=f"{unique('reader')}@example.org", created_at=now)
        session.add(supporter)
        session.flush()
        row = OutboxMessage(
            enrolment_id=supporter.id,
            step_id=step,
            supporter_id=supporter.id,
            journey_id=journey,
            journey_version_id=1,
            template=step,
            variant=variant,
            transactional=False,
            status=status,
            due_at=now,
            created_at=now,
            claimed_by="w",
            claimed_at=now,
        )
        session.add(row)
        session.flush()
        ids.append(row.id)
    return ids


def provider_event(message_id: int, kind: str, at: datetime, key: str) -> ProviderEvent:
    return ProviderEvent(
        event=kind,
        dedup_key=key,
        occurred_at=at,
        email="reader@example.org",
        mobilise_message_id=str(message_id),
        bounce_type="bounce" if kind == "bounce" else None,
    )


def webhook(session: Session, events: list[ProviderEvent], now: datetime) -> None:
    deliveries.apply(
        session,
        events,
        provider="sendgrid",
        now=now,
        supersedes=sendgrid_events.supersedes,
        suppression=lambda _event: None,
        secret=SECRET,
    )


def supporter_of(session: Session, message_id: int) -> int:
    found = session.scalar(select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id))
    assert found is not None
    return found


def click(
    session: Session, message_id: int, at: datetime, *, position: int = 0, automated: bool = False
) -> int:
    click_id = session.execute(
        insert(Click)
        .values(
            message_id=message_id,
            link_position=position,
            supporter_id=supporter_of(session, message_id),
            clicked_at=at,
            automated=automated,
        )
        .returning(Click.id)
    ).scalar_one()
    counts.refresh(session, [message_id])
    return click_id


def click_flags(session: Session, message_id: int) -> list[tuple[int, bool]]:
    """(link position, automated?) of each click on the email, in the order recorded."""
    return [
        (position, automated)
        for position, automated in session.execute(
            select(Click.link_position, Click.automated)
            .where(Click.message_id == message_id)
            .order_by(Click.id)
        )
    ]


def flag_automated(session: Session, click_id: int) -> None:
    """A scanner recognised after the fact: the click stays, out of the figures."""
    message_id = session.execute(
        update(Click).where(Click.id == click_id).values(automated=True).returning(Click.message_id)
    ).scalar_one()
    counts.refresh(session, [message_id])


def gift(
    session: Session,
    message_id: int | None,
    at: datetime,
    *,
    cents: int = 2000,
    frequency: str = "one-off",
    external_id: str | None = None,
    subscription_id: str | None = None,
) -> str:
    """A gift attributed to `message_id` (None: unattributed); a replayed external id is
    ignored, as the gift paths ignore it."""
    key = external_id or unique("gift")
    existing = session.scalar(select(Donation.id).where(Donation.external_id == key))
    if existing is None:
        session.add(
            Donation(
                supporter_id=supporter_of(session, message_id) if message_id else None,
                amount_cents=cents,
                currency="EUR",
                donated_at=at,
                frequency=frequency,
                external_id=key,
                subscription_id=subscription_id,
                recorded_at=at,
                message_id=message_id,
                attributed_by="reference" if message_id else None,
            )
        )
        session.flush()
    counts.gifts_changed(session, [key])
    return key


def refund(session: Session, external_id: str, at: datetime) -> None:
    session.execute(
        update(Donation)
        .where(Donation.external_id == external_id, Donation.refunded_at.is_(None))
        .values(refunded_at=at)
    )
    counts.gifts_changed(session, [external_id])


def cancel(session: Session, external_id: str, at: datetime) -> None:
    session.execute(
        update(Donation)
        .where(Donation.external_id == external_id, Donation.cancelled_at.is_(None))
        .values(cancelled_at=at)
    )
    counts.gifts_changed(session, [external_id])


def move_gift(session: Session, external_id: str, to: int | None) -> None:
    """Attribute a gift to another email (or none): both emails are refreshed."""
    before = session.scalar(select(Donation.message_id).where(Donation.external_id == external_id))
    session.execute(
        update(Donation).where(Donation.external_id == external_id).values(message_id=to)
    )
    counts.refresh(session, [m for m in (before, to) if m is not None])
