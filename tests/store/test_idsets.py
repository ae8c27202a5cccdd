"""A batch of ids bound as one parameter (engine.store.idsets), on both databases.

Given supporters 1 to 5, when rows are selected among a set of ids, then exactly the
listed ids that exist come back, none for an empty set, and a set of 3,000 ids (over
SQLite's old IN-list chunk) still binds as a single parameter.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store.idsets import among
from engine.store.models import Supporter


def given_supporters(session: Session, now: datetime, count: int) -> None:
    session.add_all(
        Supporter(id=i, email=f"s{i}@example.net", locale="fr", created_at=now)
        for i in range(1, count + 1)
    )
    session.flush()


def found(session: Session, ids: list[int]) -> list[int]:
    statement = select(Supporter.id).where(among(session, Supporter.id, ids))
    return sorted(session.scalars(statement))


def test_only_the_listed_ids_that_exist_are_found(session: Session, now: datetime) -> None:
    given_supporters(session, now, 5)
    assert found(session, [4, 2, 99]) == [2, 4]
    assert found(session, []) == []


def test_thousands_of_ids_bind_as_one_parameter(session: Session, now: datetime) -> None:
    given_supporters(session, now, 5)
    ids = list(range(-3000, 0)) + [5]
    statement = select(Supporter.id).where(among(session, Supporter.id, ids))
    assert len(statement.compile(session.get_bind()).params) == 1
    assert list(session.scalars(statement)) == [5]
