"""Tracked links per template version: a click token's position resolves only to these."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store.models import Link


def remember(session: Session, template: str, version: str, urls: Sequence[str]) -> None:
    """Store a version's links; a version already stored is left as it is (idempotent)."""
    if not urls:
        return
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    rows = [
        {"template": template, "version": version, "position": position, "url": url}
        for position, url in enumerate(urls)
    ]
    session.connection().execute(
        insert_(Link)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["template", "version", "position"])
    )


def target(session: Session, template: str, version: str, position: int) -> str | None:
    """The stored URL of one link of one template version, or None."""
    return session.scalar(
        select(Link.url).where(
            Link.template == template, Link.version == version, Link.position == position
        )
    )
