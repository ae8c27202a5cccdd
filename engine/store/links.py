"""Tracked links per template version: a click only ever redirects to a stored URL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from engine.store.db import connection_of
from engine.store.idsets import among_bound, bound
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


@dataclass(frozen=True)
class Targets:
    """What a click on a sent message can lead to: its links' URLs by position, and the
    supporter it went to. Neither ever changes once the message is sent."""

    supporter_id: int | None
    urls: dict[int, str]


def targets(session: Session, message_ids: Collection[int]) -> dict[int, Targets]:
    """The links of these messages (those with a rendered version); one statement."""
    dialect = session.get_bind().dialect.name
    found: dict[int, Targets] = {}
    for message_id, supporter_id, position, url in session.connection().execute(
        _targets(dialect), {"ids": bound(dialect, message_ids)}
    ):
        found.setdefault(message_id, Targets(supporter_id, {})).urls[position] = url
    return found


def urls(where: Session | Connection, template: str, version: str) -> dict[int, str]:
    """The links of one template version, by position. A version's links never change:
    the click writer reads each version's once (a campaign has a handful)."""
    rows = connection_of(where).execute(
        select(Link.position, Link.url).where(Link.template == template, Link.version == version)
    )
    return {position: url for position, url in rows}


@cache
def _targets(dialect: str) -> Select[*tuple[Any, ...]]:
    # Built once per dialect, the ids bound as one parameter: the click writer runs it for
    # the messages of a batch it has not seen yet.
    return (
        select(OutboxMessage.id, OutboxMessage.supporter_id, Link.position, Link.url)
        .join(
            Link,
            (Link.template == OutboxMessage.template)
            & (Link.version == OutboxMessage.template_version),
        )
        .where(among_bound(dialect, OutboxMessage.id, "ids"))
    )
