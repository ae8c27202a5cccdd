"""Suppressions: addresses never to email again (unsubscribe, bounce, complaint, erasure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, tuple_
from sqlalchemy.orm import Session

from engine.rules.supporters import email_hash
from engine.store import events
from engine.store.models import OutboxMessage, Supporter, Suppression


@dataclass(frozen=True)
class SuppressionCreate:
    reason: str
    occurred_at: datetime
    supporter_id: int | None = None
    email: str | None = None


def add_many(session: Session, items: Sequence[SuppressionCreate], *, now: datetime) -> int:
    """Record suppressions set-based, once per (address, reason). Returns how many were new."""
    if not items:
        return 0
    emails = {i.email for i in items if i.email}
    ids = {i.supporter_id for i in items if i.supporter_id is not None}
    # One lookup serves both directions: the address of a known supporter, the supporter
    # of a known address.
    known_people = session.execute(
        select(Supporter.id, Supporter.email).where(
            or_(Supporter.email.in_(emails), Supporter.id.in_(ids))
        )
    ).all()
    by_email = {email: sid for sid, email in known_people if email}
    email_of = {sid: email for sid, email in known_people}
    wanted: dict[tuple[str, str], dict[str, object]] = {}
    for item in items:
        supporter_id = item.supporter_id or by_email.get(item.email or "")
        email = item.email or email_of.get(item.supporter_id or -1)
        if email is None:
            continue  # an erased supporter is suppressed already, by hash
        key = (email_hash(email), item.reason)
        wanted.setdefault(
            key,
            {
                "supporter_id": supporter_id,
                "email_hash": key[0],
                "reason": item.reason,
                "created_at": now,
            },
        )
    known = set(
        session.execute(
            select(Suppression.email_hash, Suppression.reason).where(
                tuple_(Suppression.email_hash, Suppression.reason).in_(list(wanted))
            )
        ).all()
    )
    fresh = [row for key, row in wanted.items() if key not in known]
    if fresh:
        session.execute(insert(Suppression), fresh)
    return len(fresh)


def unsubscribe_message(session: Session, message_id: int, *, now: datetime) -> bool:
    """Unsubscribe the supporter a message went to; False if no such message. Idempotent."""
    supporter_id = session.scalar(
        select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id)
    )
    if supporter_id is None:
        return False
    add_many(session, [SuppressionCreate("unsubscribe", now, supporter_id=supporter_id)], now=now)
    events.append(
        session,
        kind="supporter.unsubscribed",
        source_key=f"unsubscribe:{message_id}",
        occurred_at=now,
        supporter_id=supporter_id,
        payload={"message_id": message_id},
    )
    return True
