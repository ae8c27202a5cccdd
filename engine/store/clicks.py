"""Clicks on tracked links: each click is a row; the first per link is also an event.

No IP address, no user agent: a click row is the message, the link and the time.

Prefetchers and security scanners (mail gateways that open every link of an email as it
arrives) are told apart by their timing, within `burst` (MOBILISE_AUTOMATED_CLICK_SECONDS,
10 s by default): clicks on two different links of one email within `burst` of each
other, or any click within `burst` of the email being sent. People do not read that
fast. Such clicks are kept, flagged `automated`, and left out of attribution and rates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, insert, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from engine.store import counts, events
from engine.store.models import Click, OutboxMessage

DEFAULT_BURST = timedelta(seconds=10)


def record(
    session: Session,
    *,
    message_id: int,
    position: int,
    supporter_id: int | None,
    now: datetime,
    burst: timedelta = DEFAULT_BURST,
) -> None:
    session.execute(
        insert(Click).values(
            message_id=message_id, link_position=position, supporter_id=supporter_id, clicked_at=now
        )
    )
    flag_automated(session, message_id=message_id, now=now, burst=burst)
    events.append(
        session,
        kind="link.clicked",
        source_key=f"click:{message_id}:{position}",
        occurred_at=now,
        supporter_id=supporter_id,
        payload={"message_id": message_id, "position": position},
    )
    counts.refresh(session, [message_id])


def flag_automated(session: Session, *, message_id: int, now: datetime, burst: timedelta) -> int:
    """Flag the message's clicks of the last `burst` when they look automated (see the
    module docstring); returns how many were flagged.

    One statement, through ix_clicks_message: run at each click, so that a gift recorded
    a minute later is never attributed to a scanner's click."""
    since = now - burst
    recent = and_(Click.message_id == message_id, Click.clicked_at > since, Click.clicked_at <= now)
    other = aliased(Click)
    links_clicked = (
        select(func.count(func.distinct(other.link_position)))
        .where(other.message_id == message_id, other.clicked_at > since, other.clicked_at <= now)
        .scalar_subquery()
    )
    just_sent = exists().where(OutboxMessage.id == message_id, OutboxMessage.sent_at > since)
    flagged = session.execute(
        update(Click)
        .where(recent, Click.automated.is_(False), or_(links_clicked > 1, just_sent))
        .values(automated=true())
        .execution_options(synchronize_session=False)
    )
    return int(flagged.rowcount)  # type: ignore[attr-defined]
