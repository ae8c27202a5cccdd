"""Clicks on tracked links: each click is a row; the first per link is also an event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from engine.store import counts, events
from engine.store.models import Click


def record(
    session: Session, *, message_id: int, position: int, supporter_id: int | None, now: datetime
) -> None:
    session.execute(
        insert(Click).values(
            message_id=message_id, link_position=position, supporter_id=supporter_id, clicked_at=now
        )
    )
    events.append(
        session,
        kind="link.clicked",
        source_key=f"click:{message_id}:{position}",
        occurred_at=now,
        supporter_id=supporter_id,
        payload={"message_id": message_id, "position": position},
    )
    counts.refresh(session, [message_id])
