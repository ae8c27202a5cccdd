"""The public surface holds, over HTTP on SQLite and PostgreSQL: body caps (413), rate
limits (429), cross-site forms refused (403) and CORS for the allowed sites only, security
headers on every page, and one access-log line per request that names no one."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from engine.api.app import create_app
from engine.config import Settings
from engine.render import tokens
from engine.store import petitions
from engine.store.db import make_sessionmaker
from engine.store.models import Signature, Supporter
from tests.e2e.dashboard_helpers import Clock
from tests.factories import petition_def, unique
from tests.fakes.event_webhook import EventSigner

BASE = "https://m.example.org"
NGO = "https://www.ngo.example"
EVIL = "https://evil.example"
SECRET = "surface-secret"

MakeClient = Callable[..., TestClient]


@pytest.fixture
def slug(committed_engine: Engine, now: datetime) -> str:
    with make_sessionmaker(committed_engine).begin() as session:
        return petitions.upsert(session, petition_def(), now=now).slug


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_client(committed_url: str, clock: Clock) -> Iterator[MakeClient]:
    """A client on an app with these settings (over the test's defaults)."""
    opened: list[TestClient] = []

    def make(client: tuple[str, int] = ("192.0.2.10", 50000), **overrides: Any) -> TestClient:
        settings: dict[str, Any] = {
            "database_url": committed_url,
            "sign_batch_wait_ms": 0,
            "secret_key": SECRET,
            "base_url": BASE,
            "allowed_origins": NGO,
        }
        app = create_app(Settings(**(settings | overrides)), clock=clock)
        test_client = TestClient(app, client=client, raise_server_exceptions=False)
        opened.append(test_client.__enter__())
        return test_client

    yield make
    for test_client in opened:
        test_client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def signatures_of(engine: Engine, email: str) -> int:
    with make_sessionmaker(engine)() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Signature)
                .join(Supporter, Supporter.id == Signature.supporter_id)
                .where(Supporter.email == email)
            )
            or 0
        )


def form(slug: str, email: str, **headers: str) -> dict[str, Any]:
    return {
        "url": f"/api/petitions/{slug}/signatures",
        "data": {"email": email, "consent_fundraising": "on"},
        "headers": headers,
    }


# --- body caps


def test_a_signature_body_over_the_cap_is_a_413_in_json_and_records_nothing(
    client: TestClient, slug: str, committed_engine: Engine
) -> None:
    email = f"{unique('big')}@example.fr"

    answer = client.post(
        f"/api/petitions/{slug}/signatures", json={"email": email, "first_name": "x" * 20_000}
    )

    assert answer.status_code == 413
    assert answer.json()["error"] == "request body over 16,384 bytes"
    assert signatures_of(committed_engine, email) == 0


def test_an_unsigned_webhook_over_the_cap_is_refused_before_its_signature_is_checked(
    make_client: MakeClient,
) -> None:
    # Given a configured key, and the webhook cap lowered to 1 MB
    client = make_client(
        sendgrid_webhook_public_key=EventSigner().public_key, webhook_max_bytes=1 << 20
    )
    body = b"[" + b'{"event":"delivered"},' * 60_000 + b"{}]"  # 1.3 MB, unsigned

    over = client.post("/webhooks/sendgrid", content=body)
    under = client.post("/webhooks/sendgrid", content=b"[]")

    # Then the big one is 413 (its signature was never looked at), the small one 401
    assert [over.status_code, under.status_code] == [413, 401]


# --- rate limits


def test_a_client_signing_too_fast_is_told_when_to_come_back_and_loses_nothing_after(
    make_client: MakeClient, slug: str, clock: Clock, committed_engine: Engine
) -> None:
    # Given 3 signatures a minute per client
    client = make_client(sign_rate_per_minute=3)
    neighbour = make_client(client=("198.51.100.7", 4000), sign_rate_per_minute=3)
    emails = [f"{unique('fast')}@example.fr" for _ in range(5)]
    url = f"/api/petitions/{slug}/signatures"

    # When one client signs 4 times at once
    answers = [client.post(url, json={"email": e}) for e in emails[:4]]

    # Then the 4th is refused with the time to wait, and not recorded
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert answers[3].headers["retry-after"] == "20"
    assert answers[3].json()["error"] == "too many requests from your address"
    assert signatures_of(committed_engine, emails[3]) == 0
    # And another address is not held back by it (the app's clock has not moved)
    assert neighbour.post(url, json={"email": emails[4]}).status_code == 202
    # And 20 s later the first client signs again
    clock.now += timedelta(seconds=20)
    assert client.post(url, json={"email": emails[3]}).status_code == 202
    assert signatures_of(committed_engine, emails[3]) == 1


def test_staff_sign_in_attempts_are_limited_per_client(make_client: MakeClient) -> None:
    client = make_client(login_rate_per_minute=2)

    answers = [client.post("/dashboard/login", data={"key": "mob_guess"}) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[2].headers["retry-after"] == "30"


# --- cross-site forms, CORS, media types


@pytest.mark.parametrize(
    "headers",
    [{"Origin": EVIL}, {"Referer": f"{EVIL}/petition.html"}, {"Origin": "null"}],
    ids=["origin", "referer", "null-origin"],
)
def test_a_cross_site_form_is_refused_and_records_nothing(
    client: TestClient, slug: str, committed_engine: Engine, headers: dict[str, str]
) -> None:
    # Given a victim's address, posted by another site's page in the victim's browser
    email = f"{unique('victim')}@example.fr"

    answer = client.post(**form(slug, email, **headers))

    assert answer.status_code == 403
    assert answer.json()["error"].startswith("signatures posted from")
    assert signatures_of(committed_engine, email) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": NGO},
        {"Origin": BASE},
        {"Origin": "http://testserver"},  # the page's own host
        {"Referer": f"{NGO}/agir"},
        {},  # no browser: a server posting for the organisation
    ],
    ids=["allowed-site", "base-url", "same-host", "allowed-referer", "no-browser"],
)
def test_forms_from_our_own_and_allowed_sites_are_recorded(
    client: TestClient, slug: str, committed_engine: Engine, headers: dict[str, str]
) -> None:
    email = f"{unique('friend')}@example.fr"

    answer = client.post(**form(slug, email, **headers))

    assert answer.status_code == 200
    assert signatures_of(committed_engine, email) == 1


def test_cors_opens_the_signing_route_to_allowed_sites_only(client: TestClient, slug: str) -> None:
    url = f"/api/petitions/{slug}/signatures"
    asks = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    allowed = client.options(url, headers={"Origin": NGO, **asks})
    foreign = client.options(url, headers={"Origin": EVIL, **asks})
    signed = client.post(
        url, json={"email": f"{unique('cors')}@example.fr"}, headers={"Origin": NGO}
    )
    count = client.get(f"/api/petitions/{slug}", headers={"Origin": NGO})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == NGO
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers
    assert signed.status_code == 202
    assert signed.headers["access-control-allow-origin"] == NGO
    assert count.headers["access-control-allow-origin"] == NGO


def test_cors_opens_a_petitions_count_to_allowed_sites_only(client: TestClient, slug: str) -> None:
    # Given an NGO's site showing the count, and another site
    url = f"/api/petitions/{slug}"

    # When each reads it with fetch (and asks first, as for a request with a content type)
    ours = client.get(url, headers={"Origin": NGO})
    theirs = client.get(url, headers={"Origin": EVIL})
    asked = client.options(url, headers={"Origin": NGO, "Access-Control-Request-Method": "GET"})
    elsewhere = client.get("/healthz", headers={"Origin": NGO})

    # Then only the allowed site may read it, and no other route opens
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["access-control-allow-origin"] == NGO
    assert "access-control-allow-origin" not in theirs.headers
    assert asked.status_code == 200
    assert "GET" in asked.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in elsewhere.headers


def test_json_sent_as_plain_text_is_refused_with_415(client: TestClient, slug: str) -> None:
    answer = client.post(
        f"/api/petitions/{slug}/signatures",
        content=b'{"email": "a@example.fr"}',
        headers={"Content-Type": "text/plain", "Origin": NGO},
    )

    assert answer.status_code == 415


# --- security headers


def test_every_page_forbids_framing_sniffing_and_referrers(client: TestClient, slug: str) -> None:
    pages = {
        "unsubscribe": client.get(f"/u/{tokens.unsubscribe_token(SECRET, 1)}"),
        "unknown link": client.get("/c/forged-token"),
        "unsubscribe of nothing": client.post(f"/u/{tokens.unsubscribe_token(SECRET, 10**12)}"),
        "thank-you": client.post(**form(slug, f"{unique('thanks')}@example.fr")),
        "dashboard sign-in": client.get("/dashboard/login"),
        "health (JSON)": client.get("/healthz"),
    }

    for name, page in pages.items():
        assert page.status_code in (200, 404), name
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, name
        assert "default-src 'none'" in policy, name
        assert page.headers["x-content-type-options"] == "nosniff", name
        # A page with a form names itself to this site only (its origin checks need it)
        expected = "same-origin" if name == "dashboard sign-in" else "no-referrer"
        assert page.headers["referrer-policy"] == expected, name
    assert pages["unsubscribe"].headers["content-type"].startswith("text/html")


def test_the_api_docs_page_may_load_swagger_but_not_be_framed(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"


# --- access log


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="engine.api.access")
    return caplog


def lines(log: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """Each access-log line: its level, its text and its fields."""
    return [
        {"level": r.levelno, "text": r.getMessage()} | vars(r)
        for r in log.records
        if r.name == "engine.api.access"
    ]


def test_each_request_logs_one_line_that_names_no_one(
    client: TestClient, slug: str, access_log: pytest.LogCaptureFixture
) -> None:
    email = f"{unique('quiet')}@example.fr"
    token = tokens.unsubscribe_token(SECRET, 1)

    client.get(f"/u/{token}?email={email}")
    client.post(f"/api/petitions/{slug}/signatures", json={"email": email})

    page, signed = lines(access_log)
    assert (page["method"], page["path"], page["status"]) == ("GET", "/u/{token}", 200)
    assert (signed["method"], signed["path"], signed["status"]) == (
        "POST",
        f"/api/petitions/{slug}/signatures",
        202,
    )
    for line in (page, signed):
        assert line["level"] == logging.INFO
        assert line["duration_ms"] >= 0
        assert line["text"].startswith(f"method={line['method']} path={line['path']} ")
        for secret in (token, email, "?"):
            assert secret not in line["text"]


def test_each_refusal_logs_one_warning_line_with_its_reason(
    make_client: MakeClient, slug: str, access_log: pytest.LogCaptureFixture
) -> None:
    client = make_client(sign_rate_per_minute=1)
    url = f"/api/petitions/{slug}/signatures"

    client.post(url, content=b"x" * 20_000, headers={"Content-Type": "application/json"})
    client.post(**form(slug, "a@example.fr", Origin=EVIL))
    client.post(url, json={"email": "b@example.fr"})

    assert [(r["level"], r["status"], r["reason"]) for r in lines(access_log)] == [
        (logging.WARNING, 413, "TooLarge: request body over 16,384 bytes"),
        (logging.WARNING, 403, f"Forbidden: signatures posted from {EVIL} are not accepted"),
        (logging.WARNING, 429, "TooManyRequests: too many requests from your address"),
    ]


def test_a_database_outage_and_a_crash_each_log_one_error_line(
    access_log: pytest.LogCaptureFixture,
) -> None:
    app: FastAPI = create_app(
        Settings(database_url="postgresql://postgres@127.0.0.1:1/none", secret_key=SECRET)
    )

    @app.get("/boom")
    def boom() -> None:
        raise ZeroDivisionError

    with TestClient(app, raise_server_exceptions=False) as client:
        down = client.get("/api/petitions/any")
        crash = client.get("/boom")

    assert [down.status_code, crash.status_code] == [503, 500]
    outage, crashed = lines(access_log)
    assert outage["level"] == crashed["level"] == logging.ERROR
    assert outage["reason"].startswith("database unavailable: OperationalError")
    assert (crashed["status"], crashed["reason"]) == (500, "unhandled ZeroDivisionError")


def test_the_openapi_document_names_every_refusal_of_the_guarded_routes(
    client: TestClient,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    signing = paths["/api/petitions/{slug}/signatures"]["post"]["responses"]
    webhook = paths["/webhooks/sendgrid"]["post"]["responses"]
    health = paths["/healthz"]["get"]["responses"]
    assert {"403", "413", "415", "429"} <= set(signing)
    assert {"401", "413", "503"} <= set(webhook)
    assert "503" in health
