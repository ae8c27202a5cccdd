"""Clicks on tracked links: each click is a row; the first per link is also an event.

No IP address, no user agent: a click row is the message, the link and the time.

Prefetchers and security scanners (mail gateways that open every link of an email as it
arrives) are told apart by their timing, within `burst` (MOBILISE_AUTOMATED_CLICK_SECONDS,
10 s by default): clicks on two different links of one email within `burst` of each
other, or any click within `burst` of the email being sent. People do not read that
fast. Such clicks are kept, flagged `automated`, and left out of attribution and rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, exists, func, insert, or_, select, true, update
from sqlalchemy.orm import Session

from engine.store import counts, events
from engine.store.models import Click, OutboxMessage

DEFAULT_BURST = timedelta(seconds=10)


@dataclass(frozen=True)
class ClickIn:
    """One click on link `position` of message `message_id`, at `at`."""

    message_id: int
    position: int
    supporter_id: int | None
    at: datetime


def record(
    session: Session,
    *,
    message_id: int,
    position: int,
    supporter_id: int | None,
    now: datetime,
    burst: timedelta = DEFAULT_BURST,
) -> None:
    """One click, as the click route records it."""
    record_many(session, [ClickIn(message_id, position, supporter_id, now)], burst=burst)


def record_many(
    session: Session, clicks: Sequence[ClickIn], *, burst: timedelta = DEFAULT_BURST
) -> None:
    """Clicks, each as `record` would at its own instant: the rows, the flags, the first
    click per link as an event, and the figures, in five statements whatever their number
    (a simulated hour of clicks; a click route called once per click spends most of its
    time building statements).

    The flags come out as one click at a time: each click looks at the clicks of the
    `burst` before it, and no later click of the batch is in that window."""
    if not clicks:
        return
    ordered = sorted(clicks, key=lambda c: c.at)
    connection = session.connection()
    connection.execute(
        insert(_CLICKS),
        [
            {
                "message_id": c.message_id,
                "link_position": c.position,
                "supporter_id": c.supporter_id,
                "clicked_at": c.at,
            }
            for c in ordered
        ],
    )
    connection.execute(
        _FLAG, [{"mid": c.message_id, "since": c.at - burst, "now": c.at} for c in ordered]
    )
    events.append_many(
        session,
        [
            events.EventIn(
                kind="link.clicked",
                source_key=f"click:{c.message_id}:{c.position}",
                occurred_at=c.at,
                supporter_id=c.supporter_id,
                payload={"message_id": c.message_id, "position": c.position},
            )
            for c in ordered
        ],
    )
    counts.refresh(session, [c.message_id for c in ordered])


def flag_automated(session: Session, *, message_id: int, now: datetime, burst: timedelta) -> int:
    """Flag the message's clicks of the last `burst` when they look automated (see the
    module docstring); returns how many were flagged."""
    flagged = session.connection().execute(
        _FLAG, {"mid": message_id, "since": now - burst, "now": now}
    )
    return int(flagged.rowcount)


_CLICKS = cast(Table, Click.__table__)
_OUTBOX = cast(Table, OutboxMessage.__table__)
# One statement, through ix_clicks_message, built once and run at each click (an
# executemany for a batch), so that a gift recorded a minute later is never attributed
# to a scanner's click.
_recent = and_(
    _CLICKS.c.message_id == bindparam("mid"),
    _CLICKS.c.clicked_at > bindparam("since"),
    _CLICKS.c.clicked_at <= bindparam("now"),
)
_other = _CLICKS.alias("other")
_links_clicked = (
    select(func.count(func.distinct(_other.c.link_position)))
    .where(
        _other.c.message_id == bindparam("mid"),
        _other.c.clicked_at > bindparam("since"),
        _other.c.clicked_at <= bindparam("now"),
    )
    .scalar_subquery()
)
_just_sent = exists().where(
    _OUTBOX.c.id == bindparam("mid"), _OUTBOX.c.sent_at > bindparam("since")
)
_FLAG = (
    update(_CLICKS)
    .where(_recent, _CLICKS.c.automated.is_(False), or_(_links_clicked > 1, _just_sent))
    .values(automated=true())
)
