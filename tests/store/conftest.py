"""Fixtures of the store tests that run `mobilise` commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from engine.config import get_settings
from engine.store import migrate
from tests.backends import fresh_postgres_database
from tests.store.journey_helpers import copy_declared


@pytest.fixture
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A copy of the declared files and an empty migrated database of its own, SQLite
    unless a test asks for PostgreSQL too (`@pytest.mark.parametrize("project",
    BACKENDS, indirect=True)`); `tick` dispatches too, so emails go to `.eml` files in
    the test's own folder."""
    copy_declared(tmp_path)
    with ExitStack() as stack:
        if getattr(request, "param", "sqlite") == "postgresql":
            url = stack.enter_context(fresh_postgres_database())
        else:
            url = f"sqlite:///{tmp_path / 'var' / 'mobilise.db'}"
        monkeypatch.setenv("MOBILISE_DATABASE_URL", url)
        monkeypatch.setenv("MOBILISE_TRANSPORT", "file")
        monkeypatch.setenv("MOBILISE_OUTBOX_DIR", str(tmp_path / "var" / "outbox"))
        monkeypatch.setenv("MOBILISE_PROJECT_DIR", str(tmp_path))
        get_settings.cache_clear()
        migrate.upgrade(url)
        yield tmp_path
        get_settings.cache_clear()
