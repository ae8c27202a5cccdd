"""Tracked links per template version: a click only ever redirects to a stored URL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import Link, OutboxMessage


def remember(session: Session, template: str, version: str, urls: Sequence[str]) -> None:
    """Store a version's links once; calling again for the same version changes nothing."""
    if not urls:
        return
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [
        {"template": template, "version": version, "position": i, "url": url}
        for i, url in enumerate(urls)
    ]
    session.execute(
        insert_(Link)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["template", "version", "position"])
    )


def target_of_message(session: Session, message_id: int, position: int) -> tuple[str, int] | None:
    """The URL behind link `position` of a sent message, and the message's supporter."""
    row = session.execute(
        select(Link.url, OutboxMessage.supporter_id)
        .join(
            Link,
            (Link.template == OutboxMessage.template)
            & (Link.version == OutboxMessage.template_version),
        )
        .where(OutboxMessage.id == message_id, Link.position == position)
    ).first()
    return (row[0], row[1]) if row else None
