"""Supporters' rights over HTTP on both databases: the supporter's own page, the admin API,
and the audit log they write (sign-ins too).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.config import Settings
from engine.render import tokens
from engine.rules.staff import Role
from engine.store import apikeys, audit
from engine.store.db import make_sessionmaker
from engine.store.models import Enrolment, JourneyVersion, Supporter
from tests.e2e.dashboard_helpers import Clock, sign_in
from tests.factories import sent_email, unique

SECRET = "rights-secret"


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(committed_url: str, outbox_dir: Path, clock: Clock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=committed_url, secret_key=SECRET, transport="file", outbox_dir=outbox_dir
    )
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        yield client


@pytest.fixture
def sent(committed_engine: Engine, outbox_dir: Path) -> tuple[int, int, str]:
    """(message id, supporter id, address): an email sent, its `.eml` copy on disk."""
    now = datetime.now(UTC)
    email = f"{unique('reader')}@example.fr"
    journey_id = unique("j")
    # A real definition: this database is shared, and other tests read its journeys
    definition = {
        "id": journey_id,
        "trigger": {"signed": "p"},
        "steps": [{"id": "update", "send": {"template": "update", "consent": "updates"}}],
    }
    with make_sessionmaker(committed_engine).begin() as session:
        supporter = Supporter(email=email, first_name="Inès", locale="fr", created_at=now)
        version = JourneyVersion(
            journey_id=journey_id, version=1, campaign="c", petition_slug="p",
            timezone="Europe/Paris", definition=definition, content_hash=unique("h"),
            created_at=now,
        )  # fmt: skip
        session.add_all([supporter, version])
        session.flush()
        enrolment = Enrolment(
            journey_id=version.journey_id, journey_version_id=version.id,
            supporter_id=supporter.id, state="active", step_id="update", step_at=now,
            entered_at=now,
        )  # fmt: skip
        session.add(enrolment)
        session.flush()
        message_id = sent_email(
            session, supporter.id, "update", now, version="v1", enrolment_id=enrolment.id
        )
        ids = message_id, supporter.id
    outbox_dir.mkdir(parents=True, exist_ok=True)
    (outbox_dir / f"{ids[0]}.eml").write_text(f"To: {email}\n\nBonjour Inès\n")
    return ids[0], ids[1], email


def person(engine: Engine, supporter_id: int) -> Supporter:
    with make_sessionmaker(engine)() as session:
        found = session.get(Supporter, supporter_id)
        assert found is not None
        return found


def log(engine: Engine, supporter_id: int | None = None) -> list[tuple[str, str]]:
    with make_sessionmaker(engine)() as session:
        entries = audit.entries(session, supporter_id=supporter_id)
    return [(e.actor, e.action) for e in entries]


def test_the_rights_page_downloads_the_data_and_erases_after_confirmation(
    client: TestClient, sent: tuple[int, int, str], committed_engine: Engine, outbox_dir: Path
) -> None:
    message_id, supporter_id, email = sent
    url = f"/rights/{tokens.rights_token(SECRET, message_id)}"

    page = client.get(url)
    assert page.status_code == 200
    assert "Télécharger" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"

    data = client.get(f"{url}/data")
    assert data.status_code == 200
    assert data.headers["content-disposition"].startswith("attachment")
    assert data.json()["supporter"]["email"] == email
    assert [e["id"] for e in data.json()["emails"]] == [message_id]

    # A first POST only asks to confirm
    asked = client.post(f"{url}/erase")
    assert asked.status_code == 200
    assert 'name="confirm" value="yes"' in asked.text
    assert person(committed_engine, supporter_id).email == email

    done = client.post(f"{url}/erase", data={"confirm": "yes"})
    assert done.status_code == 200
    assert "effacées" in done.text
    gone = person(committed_engine, supporter_id)
    assert (gone.email, gone.first_name) == (None, None)
    assert gone.erased_at is not None
    assert not (outbox_dir / f"{message_id}.eml").exists()
    assert log(committed_engine, supporter_id) == [("supporter", "export"), ("supporter", "erase")]
    # The page now says so, and the data is gone
    assert "effacées" in client.get(url).text
    assert client.get(f"{url}/data").status_code == 404


def test_only_a_rights_token_opens_the_page(client: TestClient, sent: tuple[int, int, str]) -> None:
    message_id = sent[0]
    for token in (
        tokens.unsubscribe_token(SECRET, message_id),
        tokens.rights_token("another-secret", message_id),
        tokens.rights_token(SECRET, 2**63 + 5),
        tokens.rights_token(SECRET, 2**62),  # no such email
        "nonsense",
    ):
        assert client.get(f"/rights/{token}").status_code == 404
        assert client.post(f"/rights/{token}/erase", data={"confirm": "yes"}).status_code == 404


def test_the_admin_api_exercises_each_right_and_logs_it(
    client: TestClient, sent: tuple[int, int, str], committed_engine: Engine
) -> None:
    _, supporter_id, email = sent
    with make_sessionmaker(committed_engine).begin() as session:
        admin, key = apikeys.create(session, role=Role.admin, label="dpo", now=datetime.now(UTC))
        _, manager = apikeys.create(session, role=Role.manager, label="", now=datetime.now(UTC))
    bearer = {"Authorization": f"Bearer {key}"}

    assert client.post("/api/supporters/export", json={"email": email}).status_code == 401
    refused = client.post(
        "/api/supporters/export",
        json={"email": email},
        headers={"Authorization": f"Bearer {manager}"},
    )
    assert refused.status_code == 403
    unknown = client.post(
        "/api/supporters/export", json={"email": f"{unique('nobody')}@example.fr"}, headers=bearer
    )
    assert unknown.status_code == 404

    exported = client.post("/api/supporters/export", json={"email": email.upper()}, headers=bearer)
    assert exported.status_code == 200
    assert exported.json()["supporter"]["id"] == supporter_id

    fixed = client.post(
        "/api/supporters/rectify",
        json={"email": email, "first_name": "  Inès  Marie ", "postal_code": "13001"},
        headers=bearer,
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["fields"] == ["departement", "first_name", "postal_code", "region"]
    assert person(committed_engine, supporter_id).first_name == "Inès Marie"
    bad = client.post(
        "/api/supporters/rectify", json={"email": email, "postal_code": "nope"}, headers=bearer
    )
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["field"] == "postal_code"

    restricted = client.post("/api/supporters/restrict", json={"email": email}, headers=bearer)
    assert restricted.json() == {
        "supporter_id": supporter_id, "action": "restrict", "changed": True, "fields": [],
        "copies_deleted": 0,
    }  # fmt: skip
    assert person(committed_engine, supporter_id).restricted_at is not None

    erased = client.post("/api/supporters/erase", json={"email": email}, headers=bearer)
    assert erased.status_code == 200
    assert erased.json()["copies_deleted"] == 1
    assert person(committed_engine, supporter_id).email is None

    who = audit.api_key(admin)
    assert log(committed_engine, supporter_id) == [
        (who, "export"),
        (who, "rectify"),
        (who, "restrict"),
        (who, "erase"),
    ]


def test_a_staff_sign_in_is_logged(client: TestClient, committed_engine: Engine) -> None:
    with make_sessionmaker(committed_engine).begin() as session:
        key_id, key = apikeys.create(session, role=Role.fundraiser, label="", now=datetime.now(UTC))
    sign_in(client, key)
    assert (audit.staff(key_id), "sign-in") in log(committed_engine)


def test_the_openapi_schema_documents_the_rights_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for action in ("export", "rectify", "restrict", "erase"):
        responses = paths[f"/api/supporters/{action}"]["post"]["responses"]
        assert {"200", "401", "403", "404", "422"} <= set(responses)
    assert "404" in paths["/rights/{token}"]["get"]["responses"]
    assert "404" in paths["/rights/{token}/erase"]["post"]["responses"]
