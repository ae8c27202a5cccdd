"""Given an empty database, when Alembic upgrades to head, then the models and it agree;
and migrations that move data keep it, down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.store import claims, migrate, recounts
from engine.store.claims import Outcome
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Base, Signature, SignatureDay
from tests.backends import fresh_postgres_database
from tests.conftest import BACKENDS
from tests.store import engagement
from tests.store.engagement import provider_event, webhook

NOW = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


def test_upgrade_from_empty_matches_the_models(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


@dataclass
class Fresh:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


@contextmanager
def fresh(backend: str, folder: Path) -> Iterator[Fresh]:
    """A database of its own, at head."""
    with ExitStack() as stack:
        if backend == "postgresql":
            url = stack.enter_context(fresh_postgres_database())
        else:
            url = f"sqlite:///{folder / 'fresh.db'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield Fresh(url, engine, make_sessionmaker(engine))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_figures_survive_the_move_of_sent_out_of_message_counts_and_back(
    backend: str, tmp_path: Path
) -> None:
    with fresh(backend, tmp_path) as db:
        # Given a database at head with two emails sent, one of them delivered, and a third
        # still being sent
        with db.sessions.begin() as session:
            a, b, c = engagement.emails(session, NOW, [("j", "s", None)] * 3)
            claims.record(session, [Outcome(i, "sent", sent_at=NOW) for i in (a, b)], worker_id="w")
            webhook(session, [provider_event(a, "delivered", NOW, "ev-a")], NOW)
            expected = recounts.recount(session)
        # When it goes down to 0011 (where every sent email had its row, holding sent = 1)
        command.downgrade(migrate.alembic_config(db.url), "0011_stats_summary")
        with db.engine.connect() as connection:
            rows = connection.execute(text("SELECT message_id, sent FROM message_counts"))
            # Then each sent email has its row saying so, and the other none
            assert {m: sent for m, sent in rows} == {a: 1, b: 1}
        # And back up: the summary rows are still what a recount finds
        migrate.upgrade(db.url)
        with db.sessions.begin() as session:
            assert recounts.recount(session) == expected
            assert session.scalar(text("SELECT sum(sent) FROM step_counts")) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_signatures_already_there_are_counted_into_their_days(
    backend: str, tmp_path: Path
) -> None:
    with fresh(backend, tmp_path) as db:
        # Given a database at 0014 (before signature_days) whose petition has signatures
        # on two UTC days
        command.downgrade(migrate.alembic_config(db.url), "0014_key_prefix")
        late, next_day = NOW.replace(hour=23, minute=59), NOW + timedelta(days=1)
        with db.sessions.begin() as session:
            session.execute(
                insert(Signature),
                [
                    {"petition_id": 7, "supporter_id": who, "seq": seq, "signed_at": at,
                     "recorded_at": at, "source": "web", "enrol": True}
                    for seq, (who, at) in enumerate([(1, late), (2, late), (None, next_day)], 1)
                ],
            )  # fmt: skip
        # When it is upgraded
        migrate.upgrade(db.url)
        # Then each day holds its signatures, as a recount finds them
        with db.sessions.begin() as session:
            stored = session.execute(
                select(SignatureDay.petition_id, SignatureDay.day, SignatureDay.signatures)
            )
            found = {(petition, day): n for petition, day, n in stored}
            assert found == {(7, date(2026, 5, 13)): 2, (7, date(2026, 5, 14)): 1}
            assert found == recounts.signature_days(session)
