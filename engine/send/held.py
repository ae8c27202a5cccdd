"""Held emails: the dispatcher holds an email far past its due time (store/claims
`hold_overdue`) until an operator looks at the outbox and approves it
(`mobilise outbox status | approve`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from engine.store import claims


def status(session: Session) -> list[tuple[str, str, str, int]]:
    """(journey, step, status, count) over the whole outbox, held emails among them."""
    return claims.summary(session)


def approve(
    session: Session, *, now: datetime, journey_id: str | None = None, step_id: str | None = None
) -> int:
    """Queue held emails again, due `now` (the next dispatch sends them); optionally one
    journey's or step's only. Returns how many."""
    return claims.approve(session, now=now, journey_id=journey_id, step_id=step_id)
