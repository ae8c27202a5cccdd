"""Given an empty database, when Alembic upgrades to head, then the models and it agree;
and migrations that move data keep it, down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from engine.store import claims, migrate, recounts
from engine.store.claims import Outcome
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Base
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


@contextmanager
def fresh(backend: str, folder: Path) -> Iterator[str]:
    if backend == "postgresql":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{folder / 'fresh.db'}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_figures_survive_the_move_of_sent_out_of_message_counts_and_back(
    backend: str, tmp_path: Path
) -> None:
    with fresh(backend, tmp_path) as url:
        # Given a database at head with two emails sent, one of them delivered, and a third
        # still being sent
        migrate.upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            a, b, c = engagement.emails(session, NOW, [("j", "s", None)] * 3)
            claims.record(session, [Outcome(i, "sent", sent_at=NOW) for i in (a, b)], worker_id="w")
            webhook(session, [provider_event(a, "delivered", NOW, "ev-a")], NOW)
            expected = recounts.recount(session)
        # When it goes down to 0011 (where every sent email had its row, holding sent = 1)
        command.downgrade(migrate.alembic_config(url), "0011_stats_summary")
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT message_id, sent FROM message_counts"))
            # Then each sent email has its row saying so, and the other none
            assert {m: sent for m, sent in rows} == {a: 1, b: 1}
        # And back up: the summary rows are still what a recount finds
        migrate.upgrade(url)
        with sessions.begin() as session:
            assert recounts.recount(session) == expected
            assert session.scalar(text("SELECT sum(sent) FROM step_counts")) == 2
        engine.dispose()
