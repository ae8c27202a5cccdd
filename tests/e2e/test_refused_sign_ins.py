"""Refused staff sign-ins in the audit log, on SQLite and PostgreSQL: a wrong, revoked or
unknown key at the dashboard's sign-in and a refused API key each leave one row, under the
key it claims to be (by its prefix) or `unknown`, never the key; as many as the sign-in
limit lets through, so a flood cannot fill the log."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.config import Settings
from engine.rules.staff import Role
from engine.store import apikeys, audit
from engine.store.db import make_sessionmaker

STATS = "/api/journeys/welcome/stats"


def a_moment() -> datetime:
    """A time no other test writes audit rows at: the rows a test reads are its own."""
    return datetime(2031, 1, 1, tzinfo=UTC) + timedelta(seconds=secrets.randbelow(10**8))


def refusals_at(engine: Engine, at: datetime) -> list[tuple[str, str]]:
    with make_sessionmaker(engine)() as session:
        return [
            (e.actor, e.action)
            for e in audit.entries(session)
            if e.at == at and e.action.endswith("-refused")
        ]


def logged_text(engine: Engine, at: datetime) -> str:
    with make_sessionmaker(engine)() as session:
        return repr([e for e in audit.entries(session) if e.at == at])


def new_key(engine: Engine, now: datetime, *, revoked: bool = False) -> tuple[int, str]:
    with make_sessionmaker(engine).begin() as session:
        key_id, key = apikeys.create(session, role=Role.manager, label="", now=now)
        if revoked:
            apikeys.revoke(session, key_id, now=now)
    return key_id, key


def app_at(url: str, at: datetime, *, per_minute: int = 10) -> Callable[[], TestClient]:
    settings = Settings(database_url=url, login_rate_per_minute=per_minute)
    return lambda: TestClient(create_app(settings, clock=lambda: at))


def mistyped(key: str) -> str:
    return key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")


def test_refused_dashboard_sign_ins_are_logged_by_the_key_they_claim(
    committed_url: str, committed_engine: Engine
) -> None:
    # Given a manager's key and a revoked one
    at = a_moment()
    key_id, key = new_key(committed_engine, at)
    old_id, old_key = new_key(committed_engine, at, revoked=True)

    # When someone signs in with the key mistyped, the revoked key, a key of nobody's and
    # something that is no key
    unknown = apikeys.PREFIX + secrets.token_urlsafe(32)
    with app_at(committed_url, at)() as client:
        answers = [
            client.post("/dashboard/login", data={"key": tried}).status_code
            for tried in (mistyped(key), old_key, unknown, "hunter2")
        ]

    # Then each is refused and logged once, under the key it claims to be or as unknown
    assert answers == [401] * 4
    assert refusals_at(committed_engine, at) == [
        (f"staff:{key_id}", "sign-in-refused"),
        (f"staff:{old_id}", "sign-in-refused"),
        ("unknown", "sign-in-refused"),
        ("unknown", "sign-in-refused"),
    ]
    # And the log holds no key, nor the secret part of one
    logged = logged_text(committed_engine, at)
    for tried in (key, old_key, unknown, "hunter2", key[12:20]):
        assert tried not in logged


def test_a_refused_api_key_is_logged_and_no_key_at_all_is_not(
    committed_url: str, committed_engine: Engine
) -> None:
    at = a_moment()
    key_id, key = new_key(committed_engine, at)

    with app_at(committed_url, at)() as client:
        wrong = client.get(STATS, headers={"Authorization": f"Bearer {mistyped(key)}"})
        none = client.get(STATS)
        right = client.get(STATS, headers={"Authorization": f"Bearer {key}"})

    assert [wrong.status_code, none.status_code] == [401, 401]
    assert right.status_code != 401
    assert refusals_at(committed_engine, at) == [(f"apikey:{key_id}", "api-key-refused")]
    assert mistyped(key) not in logged_text(committed_engine, at)


def test_a_flood_of_refused_keys_logs_no_more_than_the_sign_in_limit(
    committed_url: str, committed_engine: Engine
) -> None:
    # Given a sign-in limit of 3 a minute
    at = a_moment()
    guessed = [apikeys.PREFIX + secrets.token_urlsafe(32) for _ in range(10)]

    # When one address tries 10 keys through the API, then 10 at the dashboard (one clock
    # instant: nothing refills)
    with app_at(committed_url, at, per_minute=3)() as client:
        api = [
            client.get(STATS, headers={"Authorization": f"Bearer {k}"}).status_code for k in guessed
        ]
    with app_at(committed_url, at, per_minute=3)() as client:
        dashboard = [client.post("/dashboard/login", data={"key": k}).status_code for k in guessed]

    # Then the first 3 of each are refused and logged, the rest are told to wait
    assert api == [401] * 3 + [429] * 7
    assert dashboard == [401] * 3 + [429] * 7
    assert (
        sorted(refusals_at(committed_engine, at))
        == [("unknown", "api-key-refused")] * 3 + [("unknown", "sign-in-refused")] * 3
    )


def test_a_browser_over_the_sign_in_limit_reads_the_sign_in_page_saying_so(
    committed_url: str,
) -> None:
    # Given a sign-in limit of 1 a minute, spent
    at = a_moment()
    browser = {"Accept": "text/html,application/xhtml+xml"}
    with app_at(committed_url, at, per_minute=1)() as client:
        client.post("/dashboard/login", data={"key": "first"}, headers=browser)

        # When the browser posts the sign-in form again, and a script does
        page = client.post("/dashboard/login", data={"key": "second"}, headers=browser)
        script = client.post("/dashboard/login", data={"key": "third"})

    # Then the browser gets the sign-in page with the message, still a 429 to wait on
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "60"
    assert "Too many requests from your address" in page.text
    assert 'name="key"' in page.text  # the form, to try again later
    assert page.headers["x-content-type-options"] == "nosniff"
    # And the script keeps its JSON
    assert script.status_code == 429
    assert script.json()["error"] == "too many requests from your address"
