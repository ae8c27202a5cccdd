"""A database holding N queued thank-you emails, as after a petition's busiest day.

Shared by the multi-worker tests and bench/dispatch_bench.py: supporters and outbox rows
are inserted in bulk (executemany), not through the journey pass, which has its own bench.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, func, insert, select

from engine.declarations import read
from engine.store import journeys, petitions
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import JourneyVersion, OutboxMessage, Supporter
from tests.store.journey_helpers import ROOT

JOURNEY = "stop-reconnaissance-faciale"
CHUNK = 20_000


def fill(url: str, count: int, *, now: datetime) -> None:
    """`count` signers of the seed petition, each with a queued thank-you due at `now`."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    declared = read(ROOT)
    with sessions.begin() as session:
        petitions.upsert(session, declared.campaigns[0].petition, now=now - timedelta(days=1))
        journeys.sync_journeys(session, declared.campaigns, now - timedelta(days=1))
        version = session.scalar(
            select(func.max(JourneyVersion.id)).where(JourneyVersion.journey_id == JOURNEY)
        )
        first = (session.scalar(select(func.max(Supporter.id))) or 0) + 1
    supporters = Supporter.__table__
    outbox = OutboxMessage.__table__
    assert isinstance(supporters, Table)
    assert isinstance(outbox, Table)
    for start in range(first, first + count, CHUNK):
        ids = range(start, min(start + CHUNK, first + count))
        with sessions.begin() as session:
            session.execute(
                insert(supporters),
                [
                    {
                        "id": i,
                        "email": f"signer{i}@example.net",
                        "first_name": f"Prénom{i}",
                        "locale": "fr",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(outbox),
                [
                    {
                        # No enrolments needed here: the outbox has no foreign keys, and the
                        # key only has to be unique.
                        "enrolment_id": i,
                        "step_id": "thanked",
                        "supporter_id": i,
                        "journey_id": JOURNEY,
                        "journey_version_id": version,
                        "template": "thanked",
                        "variant": None,
                        "transactional": True,
                        "status": "queued",
                        "due_at": now,
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
    engine.dispose()


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    engine.dispose()
    return {status: count for status, count in rows}
