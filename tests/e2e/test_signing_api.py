"""Signing over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from engine.api.app import create_app
from engine.config import Settings
from engine.store import petitions
from engine.store.db import make_sessionmaker
from engine.store.models import Consent, Signature, Supporter
from tests.factories import petition_def, unique


@pytest.fixture
def slug(committed_engine: Engine, now: datetime) -> str:
    with make_sessionmaker(committed_engine).begin() as session:
        return petitions.upsert(session, petition_def(milestones=(2,)), now=now).slug


@pytest.fixture
def client(committed_url: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=committed_url, sign_batch_wait_ms=0))
    with TestClient(app) as client:
        yield client


def test_health_says_the_database_answers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_the_same_email_spelled_three_ways_is_one_signature(
    client: TestClient, slug: str, committed_engine: Engine
) -> None:
    local = unique("zoe")
    spellings = [
        f"{local}é@example.fr",
        f"  {local.upper()}E\u0301@EXAMPLE.FR ",
        f"{local}é@Example.fr",
    ]

    answers = [
        client.post(f"/api/petitions/{slug}/signatures", json={"email": e}) for e in spellings
    ]

    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1  # nothing tells a repeat signer apart
    petition = client.get(f"/api/petitions/{slug}").json()
    assert petition["count"] == 1
    with make_sessionmaker(committed_engine)() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Supporter)
                .where(Supporter.email == f"{local}é@example.fr")
            )
            == 1
        )


def test_the_html_form_maps_checkboxes_to_consent_purposes(
    client: TestClient, slug: str, committed_engine: Engine
) -> None:
    email = f"{unique('form')}@example.fr"

    answer = client.post(
        f"/api/petitions/{slug}/signatures",
        data={
            "email": email,
            "first_name": "<b>Zoé</b>",
            "postal_code": "20200",
            "consent_updates": "on",
        },
    )

    assert answer.status_code == 200
    assert "Merci" in answer.text
    with make_sessionmaker(committed_engine)() as session:
        supporter = session.scalars(select(Supporter).where(Supporter.email == email)).one()
        assert (supporter.first_name, supporter.departement) == ("<b>Zoé</b>", "2B")
        consents = session.execute(
            select(Consent.purpose, Consent.granted).where(Consent.supporter_id == supporter.id)
        ).all()
        assert [tuple(c) for c in consents] == [("updates", True)]


def test_a_multipart_form_is_read_like_an_urlencoded_one(
    client: TestClient, slug: str, committed_engine: Engine
) -> None:
    email = f"{unique('multipart')}@example.fr"

    answer = client.post(
        f"/api/petitions/{slug}/signatures",
        data={"email": email, "consent_updates": "oui"},
        files={"ignored": ("note.txt", b"a file field is not a signer field")},
    )

    assert answer.status_code == 200
    with make_sessionmaker(committed_engine)() as session:
        granted = session.execute(
            select(Consent.purpose, Consent.granted)
            .join(Supporter, Supporter.id == Consent.supporter_id)
            .where(Supporter.email == email)
        ).all()
        assert [tuple(c) for c in granted] == [("updates", True)]


def test_the_signing_route_is_documented_with_both_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    operation = spec["paths"]["/api/petitions/{slug}/signatures"]["post"]

    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert [p["name"] for p in operation["parameters"]] == ["slug"]
    assert {"202", "404", "422"} <= set(operation["responses"])


def test_crossing_a_milestone_shows_when_it_was_reached(client: TestClient, slug: str) -> None:
    for name in ("a", "b", "c"):
        client.post(
            f"/api/petitions/{slug}/signatures", json={"email": f"{unique(name)}@example.fr"}
        )

    petition = client.get(f"/api/petitions/{slug}").json()

    assert petition["count"] == 3
    assert petition["milestones"][0]["threshold"] == 2
    assert petition["milestones"][0]["reached_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"first_name": "Zoé"}, "email"),
        ({"email": "a@example.fr", "postal_code": "ABCDE"}, "postal_code"),
        ({"email": "a@example.fr", "consents": {"updates": "perhaps"}}, "consents.updates"),
        ({"email": ["a@example.fr"]}, "email"),
    ],
)
def test_invalid_input_is_a_422_naming_the_field(
    client: TestClient, slug: str, body: dict[str, object], field: str
) -> None:
    answer = client.post(f"/api/petitions/{slug}/signatures", json=body)

    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == field


def test_a_malformed_body_or_slug_is_a_422(client: TestClient, slug: str) -> None:
    not_json = client.post(
        f"/api/petitions/{slug}/signatures",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    bad_slug = client.post("/api/petitions/Not_A_Slug/signatures", json={"email": "a@example.fr"})

    assert not_json.status_code == 422
    assert bad_slug.status_code == 422
    assert bad_slug.json()["problems"][0]["field"] == "slug"


def test_an_unknown_petition_is_a_404(client: TestClient) -> None:
    answer = client.post(
        "/api/petitions/no-such-petition/signatures", json={"email": "a@example.fr"}
    )
    assert answer.status_code == 404
    assert client.get("/api/petitions/no-such-petition").status_code == 404


def test_a_signature_is_committed_before_the_answer(
    client: TestClient, slug: str, committed_engine: Engine
) -> None:
    email = f"{unique('durable')}@example.fr"
    client.post(f"/api/petitions/{slug}/signatures", json={"email": email})
    with make_sessionmaker(committed_engine)() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Signature)
                .join(Supporter, Supporter.id == Signature.supporter_id)
                .where(Supporter.email == email)
            )
            == 1
        )


def test_signing_while_the_database_is_down_is_a_503_and_the_queue_survives() -> None:
    app = create_app(
        Settings(
            database_url="postgresql://postgres@127.0.0.1:1/none",
            sign_batch_wait_ms=0,
            scheduler=False,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [
            client.post(
                "/api/petitions/any-petition/signatures",
                json={"email": f"{unique('down')}@example.fr"},
            )
            for _ in range(2)
        ]  # the second proves the writer is still running

    assert [a.status_code for a in answers] == [503, 503]
    # Both were answered by the writer (not by the wait's timeout): it survived the first.
    assert all(a.json()["error"].startswith("database unavailable") for a in answers)
    assert answers[0].headers["retry-after"] == "5"
