"""What the command-line tests share: one runner, and the project's database as
`mobilise sync` and a few signatures leave it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.config import get_settings
from engine.declarations import read
from engine.store import journeys, petitions
from engine.store.db import make_engine, make_sessionmaker
from tests.store.journey_helpers import sign, supporter_id

runner = CliRunner()
SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


@contextmanager
def project_session() -> Iterator[Session]:
    """One transaction on the configured database (the `project` fixture's), committed
    when the block ends, as a command's own would be."""
    engine = make_engine(get_settings().database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def signed_up(project: Path, people: dict[str, tuple[bool, bool]]) -> dict[str, int]:
    """The project's campaigns synced at SIGNED and `people` (name -> consents to updates,
    to fundraising) signed its first petition then; their supporter ids by name."""
    declared = read(project)
    with project_session() as session:
        petition = petitions.upsert(session, declared.campaigns[0].petition, now=SIGNED)
        journeys.sync_journeys(session, declared.campaigns, SIGNED)
        sign(session, petition.id, SIGNED, people)
        return {name: supporter_id(session, name) for name in people}
