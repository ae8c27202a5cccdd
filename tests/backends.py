"""Real databases for tests: a temporary SQLite file and a fresh PostgreSQL database per run.

A missing backend is a skip with its reason on a developer's machine and a failure in CI
(`MOBILISE_TEST_REQUIRE_ALL=1`, set by `.ci/run`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from engine.store.db import normalise_url

PG_SERVER = os.environ.get(
    "MOBILISE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def unavailable(reason: str) -> None:
    """Skip, or fail when the run requires every backend."""
    if os.environ.get("MOBILISE_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"required backend unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create `mobilise_test_<random>` on the server, yield its URL, drop it afterwards."""
    server = create_engine(normalise_url(PG_SERVER), isolation_level="AUTOCOMMIT")
    name = f"mobilise_test_{secrets.token_hex(4)}"
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        server.dispose()
        unavailable(f"PostgreSQL not reachable at {PG_SERVER}: {exc.orig}")
        raise
    url = make_url(normalise_url(PG_SERVER)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
