"""Safe by default, on SQLite and PostgreSQL: a generated secret rather than a constant,
webhooks refused without a key, a bad configuration refused at start-up, and a health
check that a database refusing writes fails."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from engine.api.app import create_app
from engine.api.guards import POLICY
from engine.cli import app as cli
from engine.config import SECRET_FILE, Settings, get_settings
from engine.errors import Invalid
from engine.render import tokens
from engine.rules.staff import Role
from engine.store import apikeys
from engine.store.db import make_sessionmaker

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

runner = CliRunner()


def test_without_a_key_the_app_signs_with_the_secret_it_kept_under_var(
    committed_url: str, tmp_path: Path
) -> None:
    # Given no MOBILISE_SECRET_KEY: the app makes one under var/
    app = create_app(Settings(database_url=committed_url, var_dir=tmp_path))
    kept = (tmp_path / SECRET_FILE).read_text().strip()

    with TestClient(app) as client:
        ours = client.get(f"/u/{tokens.unsubscribe_token(kept, 1)}")
        # A token made with the constant the code once shipped opens nothing
        forged = client.get(f"/u/{tokens.unsubscribe_token('dev-only-insecure-secret', 1)}")

    assert [ours.status_code, forged.status_code] == [200, 404]


def test_a_webhook_without_a_configured_key_is_refused_with_a_503(committed_url: str) -> None:
    app = create_app(Settings(database_url=committed_url))
    event = {"event": "unsubscribe", "email": "victim@example.fr", "timestamp": 1}

    with TestClient(app) as client:
        answer = client.post("/webhooks/sendgrid", content=json.dumps([event]))

    assert answer.status_code == 503
    assert answer.json()["error"] == "event webhook refused: no public key configured"


def test_explicit_development_mode_takes_unsigned_webhooks(committed_url: str) -> None:
    app = create_app(Settings(database_url=committed_url, env="development"))

    with TestClient(app) as client:
        answer = client.post("/webhooks/sendgrid", content=b"[]")

    assert answer.status_code == 200


def test_an_unreadable_webhook_key_stops_the_app_at_start_up(committed_url: str) -> None:
    with pytest.raises(Invalid, match="not a valid ECDSA public key"):
        create_app(Settings(database_url=committed_url, sendgrid_webhook_public_key="bm90IGEga2V5"))


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"MOBILISE_ENV": "production", "MOBILISE_SECRET_KEY": "short"},
            "error: MOBILISE_SECRET_KEY must be set to at least 32 bytes in production",
        ),
        (
            {"MOBILISE_ENV": "production", "MOBILISE_SECRET_KEY": ""},
            "error: MOBILISE_SECRET_KEY must be set to at least 32 bytes in production",
        ),
        (
            {"MOBILISE_SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"},
            "error: MOBILISE_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid ECDSA public key",
        ),
    ],
    ids=["short-secret", "no-secret", "bad-webhook-key"],
)
def test_mobilise_run_refuses_a_bad_configuration_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        # (an unusable host: were the configuration let through, the server stops at once)
        result = runner.invoke(cli, ["run", "--host", "256.0.0.0"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 1
    assert result.stderr.startswith(message)


def test_mobilise_run_refuses_several_processes_on_port_0() -> None:
    # When several server processes are asked for on "any free port"
    result = runner.invoke(cli, ["run", "--workers", "2", "--port", "0"])

    # Then nothing starts: each would have listened on a port of its own
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --port: 0 with --workers 2: each server process")
    assert "Mobilise is serving" not in result.stdout


# --- health


def _refusing_writes(url: str) -> str:
    """The same database, opened so that it refuses every write: SQLite's read-only mode
    (the tests run as root, whom a read-only file mode does not stop), PostgreSQL's
    read-only transactions (as on a standby)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        read_only = parsed.set(database=f"file:{parsed.database}")
        return read_only.update_query_dict({"mode": "ro", "uri": "true"}).render_as_string()
    options = {"options": "-c default_transaction_read_only=on"}
    return parsed.update_query_dict(options).render_as_string(hide_password=False)


def test_health_fails_on_a_database_that_refuses_writes(
    committed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine.api.access")
    app = create_app(Settings(database_url=_refusing_writes(committed_url)))

    with TestClient(app) as client:
        answer = client.get("/healthz")
        # while it still answers reads
        assert client.get("/api/petitions/none").status_code == 404

    assert answer.status_code == 503
    assert answer.json()["status"] == "degraded"
    health = next(vars(r) for r in caplog.records if vars(r).get("path") == "/healthz")
    assert health["reason"].startswith("database refuses writes: ")


def test_health_is_ok_again_and_again_when_the_database_accepts_writes(committed_url: str) -> None:
    with TestClient(create_app(Settings(database_url=committed_url))) as client:
        answers = [client.get("/healthz") for _ in range(2)]

    assert [a.json() for a in answers] == [{"status": "ok", "database": "ok"}] * 2


def test_a_write_refused_by_a_read_only_database_is_a_503_said_once(
    committed_url: str, committed_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a manager's key, and the app on the database opened read-only
    with make_sessionmaker(committed_engine).begin() as session:
        _, key = apikeys.create(session, role=Role.manager, label="", now=NOW)
    caplog.set_level(logging.INFO, logger="engine.api.access")
    app = create_app(Settings(database_url=_refusing_writes(committed_url)), clock=lambda: NOW)
    gift = {"email": "ro@example.org", "amount": 10, "external_id": "read-only-1"}

    # When a gift is posted (reading the key works; storing the gift cannot)
    with TestClient(app) as client:
        answer = client.post(
            "/api/donations", json=gift, headers={"Authorization": f"Bearer {key}"}
        )

    # Then a 503 says why, on PostgreSQL (InternalError, once a 500) as on SQLite
    assert answer.status_code == 503
    assert answer.json() == {
        "error": "the database refuses writes (read-only): nothing was stored, try again shortly"
    }
    assert answer.headers["retry-after"] == "5"
    # And one log line names the driver's refusal
    lines = [vars(r) for r in caplog.records if vars(r).get("path") == "/api/donations"]
    assert len(lines) == 1
    assert lines[0]["reason"].startswith("database refuses writes: ")


def test_a_server_error_carries_the_security_headers(committed_url: str) -> None:
    # Given a route that fails (a bug)
    app = create_app(Settings(database_url=committed_url))

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)

    # When it is asked for
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken")

    # Then the 500, answered by Starlette's outermost middleware, has the headers too
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error"}
    assert answer.headers["content-security-policy"] == POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
