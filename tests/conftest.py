"""Shared fixtures: migrated databases on both backends, one rolled-back transaction a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from engine.store import migrate
from engine.store.db import make_engine
from tests.backends import fresh_postgres_database

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def _migrated_postgres() -> Iterator[str]:
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        yield url


def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory, folder: str) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp(folder) / 'mobilise.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session", autouse=True)
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where settings without MOBILISE_SECRET_KEY keep their generated secret: a
    temporary folder, never the developer's var/."""
    folder = tmp_path_factory.mktemp("var")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOBILISE_VAR_DIR", str(folder))
        patch.delenv("MOBILISE_SECRET_KEY", raising=False)
        patch.delenv("MOBILISE_ENV", raising=False)
        yield folder


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    with _migrated_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _migrated_sqlite(tmp_path_factory, "db")


@pytest.fixture(scope="session")
def postgresql_scratch_url() -> Iterator[str]:
    with _migrated_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_scratch_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _migrated_sqlite(tmp_path_factory, "scratch")


def _backend_url(request: pytest.FixtureRequest, suffix: str) -> str:
    url: str = request.getfixturevalue(f"{request.param}{suffix}")
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def committed_url(request: pytest.FixtureRequest) -> str:
    """A second migrated database per backend, for tests that must commit (imports, HTTP,
    several processes). Tests on `db_url` roll back and may count every row they see."""
    return _backend_url(request, "_scratch_url")


@pytest.fixture(scope="session")
def committed_engine(committed_url: str) -> Iterator[Engine]:
    engine = make_engine(committed_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database URL, once per backend."""
    return _backend_url(request, "_url")


@pytest.fixture(scope="session")
def db_engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    with db_engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        transaction.rollback()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


@pytest.fixture
def project_dir() -> Path:
    return Path(__file__).resolve().parents[1]
