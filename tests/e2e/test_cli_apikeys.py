"""`mobilise apikey create | list | revoke`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.config import get_settings
from engine.store import apikeys, audit, migrate
from engine.store.db import make_engine, make_sessionmaker

runner = CliRunner()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'mobilise.db'}"
    migrate.upgrade(url)
    monkeypatch.setenv("MOBILISE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_create_prints_a_working_key_once_then_list_and_revoke(database: str) -> None:
    # When an admin creates a key for a manager
    created = runner.invoke(app, ["apikey", "create", "--role", "Manager", "--label", "Léa"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith(apikeys.PREFIX)

    # Then it authenticates, and the listing names it without ever showing it
    engine = make_engine(database)
    with make_sessionmaker(engine)() as session:
        staff = apikeys.authenticate(session, key)
        assert staff is not None
    listed = runner.invoke(app, ["apikey", "list"])
    assert f"#{staff.key_id}" in listed.output
    assert "manager" in listed.output
    assert "Léa" in listed.output
    assert key not in listed.output

    # And once revoked it no longer works; revoking again is an error
    assert runner.invoke(app, ["apikey", "revoke", str(staff.key_id)]).exit_code == 0
    with make_sessionmaker(engine)() as session:
        assert apikeys.authenticate(session, key) is None
    again = runner.invoke(app, ["apikey", "revoke", str(staff.key_id)])
    assert again.exit_code == 1
    assert f"no active key #{staff.key_id}" in again.output
    # And both changes are in the audit log, by key number, never the key
    with make_sessionmaker(engine)() as session:
        logged = [(e.actor, e.action, e.detail) for e in audit.entries(session)]
    assert logged == [
        ("cli", "apikey-create", {"key": staff.key_id, "role": "manager"}),
        ("cli", "apikey-revoke", {"key": staff.key_id}),
    ]
    engine.dispose()


def test_an_unknown_role_is_refused_with_the_choices(database: str) -> None:
    result = runner.invoke(app, ["apikey", "create", "--role", "owner"])

    assert result.exit_code == 1
    assert "unknown role 'owner'" in result.output
    assert "fundraiser, manager, admin" in result.output
