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
        files={"first_name": ("name.txt", b"a file is no signature field")},
    )
    refused = answer.json()

    parts = "".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("email", email), ("consent_updates", "oui"))
    )
    answer = client.post(
        f"/api/petitions/{slug}/signatures",
        content=f"{parts}--b--\r\n".encode(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )

    assert [p["field"] for p in refused["problems"]] == ["first_name"]
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
    # Both answered at once, as the database's failure (not by the wait's timeout).
    assert all(a.json()["error"].startswith("database unavailable") for a in answers)
    assert answers[0].headers["retry-after"] == "5"


def _consents_of(engine: Engine, email: str) -> list[tuple[str, bool]]:
    with make_sessionmaker(engine)() as session:
        return [
            (purpose, bool(granted))
            for purpose, granted in session.execute(
                select(Consent.purpose, Consent.granted)
                .join(Supporter, Supporter.id == Consent.supporter_id)
                .where(Supporter.email == email)
                .order_by(Consent.id)
            )
        ]


@pytest.mark.parametrize(
    "consents",
    [
        {"consent_updates": True, "consent_fundraising": True},
        {"consents": {"updates": True, "fundraising": True}},  # the alias
    ],
    ids=["flags", "alias"],
)
def test_json_takes_the_consent_flags_of_the_form_and_the_csv(
    client: TestClient, slug: str, committed_engine: Engine, consents: dict[str, object]
) -> None:
    # Given a JSON signature answering both purposes with the form's and the CSV's names
    email = f"{unique('json')}@example.fr"

    # When it is posted
    answer = client.post(f"/api/petitions/{slug}/signatures", json={"email": email, **consents})

    # Then both consents are recorded
    assert answer.status_code == 202
    assert sorted(_consents_of(committed_engine, email)) == [
        ("fundraising", True),
        ("updates", True),
    ]


_UNKNOWN: list[tuple[dict[str, object], list[str]]] = [
    ({"colour": "red"}, ["colour"]),
    ({"consent_newsletter": True}, ["consent_newsletter"]),
    ({"consent_updates": True, "signed_at": "2024-05-13"}, ["signed_at"]),
    ({"colour": "red", "consent_newsletter": False}, ["colour", "consent_newsletter"]),
]


@pytest.mark.parametrize(
    ("door", "body", "named"),
    [("json", b, n) for b, n in _UNKNOWN]
    + [("form", b, n) for b, n in _UNKNOWN]
    + [("json", {"consents": {"newsletter": True}}, ["consent_newsletter"])],
)
def test_unknown_fields_and_purposes_are_refused_by_name_and_nothing_is_recorded(
    client: TestClient, slug: str, door: str, body: dict[str, object], named: list[str]
) -> None:
    # Given a signature with a field or a consent purpose the petition does not have
    email = f"{unique('unknown')}@example.fr"
    sent = {"email": email, **body}
    form = {k: "on" if v is True else "off" if v is False else v for k, v in sent.items()}

    # When it is posted as JSON or as a form
    answer = (
        client.post(f"/api/petitions/{slug}/signatures", json=sent)
        if door == "json"
        else client.post(f"/api/petitions/{slug}/signatures", data=form)
    )

    # Then it is refused, naming each, and the petition did not move
    assert answer.status_code == 422
    assert [p["field"] for p in answer.json()["problems"]] == named
    assert client.get(f"/api/petitions/{slug}").json()["count"] == 0


@pytest.fixture
def roomy_client(committed_url: str) -> Iterator[TestClient]:
    """Bodies up to 4 MB: with the default cap (16 KB) a 413 would come first."""
    settings = Settings(database_url=committed_url, sign_batch_wait_ms=0, sign_max_bytes=4 << 20)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("door", ["json", "form"])
def test_a_body_of_fifty_thousand_unknown_purposes_is_refused_naming_the_first_ones(
    roomy_client: TestClient, slug: str, door: str
) -> None:
    client = roomy_client
    # Given a body with 50,000 consent keys for purposes the petition does not declare
    keys = {f"consent_x{i}": True for i in range(50_000)}

    # When it is posted (the names are checked in one pass, before anything else)
    url = f"/api/petitions/{slug}/signatures"
    answer = (
        client.post(url, json={"email": "a@example.fr", **keys})
        if door == "json"
        else client.post(url, data={"email": "a@example.fr"} | dict.fromkeys(keys, "on"))
    )

    # Then it is refused with the first ten named, and a note that there are more
    assert answer.status_code == 422
    problems = answer.json()["problems"]
    assert [p.get("field") for p in problems] == [f"consent_x{i}" for i in range(10)] + [None]


def test_a_later_signature_records_a_new_grant_and_an_unticked_box_withdraws_nothing(
    client: TestClient, slug: str, committed_engine: Engine
) -> None:
    # Given someone who signed without ticking anything
    email = f"{unique('later')}@example.fr"
    url = f"/api/petitions/{slug}/signatures"
    client.post(url, json={"email": email})
    assert _consents_of(committed_engine, email) == []

    # When they sign again ticking `updates` (form), then again ticking nothing (JSON, form)
    ticked = client.post(url, data={"email": email, "consent_updates": "on"})
    client.post(url, json={"email": email})
    client.post(url, data={"email": email})

    # Then the later opt-in is recorded once, and still in force
    assert ticked.status_code == 200
    assert _consents_of(committed_engine, email) == [("updates", True)]
    assert client.get(f"/api/petitions/{slug}").json()["count"] == 1


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", None, "application/x-json"]
)
def test_a_json_signature_needs_the_json_content_type(
    client: TestClient, slug: str, content_type: str | None
) -> None:
    # Given a JSON body sent as another type (text/plain needs no CORS preflight)
    body = b'{"email": "plain@example.fr", "consent_fundraising": true}'
    headers = {"content-type": content_type} if content_type else {}

    answer = client.post(f"/api/petitions/{slug}/signatures", content=body, headers=headers)

    assert answer.status_code == 415
    assert client.get(f"/api/petitions/{slug}").json()["count"] == 0


def test_json_with_a_charset_is_json(client: TestClient, slug: str) -> None:
    answer = client.post(
        f"/api/petitions/{slug}/signatures",
        content=b'{"email": "charset@example.fr"}',
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert answer.status_code == 202


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "Zo\x00é"),
        ("last_name", "Dur\x07and"),
        ("last_name", "\u202eDurand"),  # right-to-left override
        ("first_name", "Zo\ufeffé"),  # a BOM inside
        ("email", "zoe\u200b@example.fr"),  # zero-width space: a second lookalike supporter
        ("email", "zoe\u200d@example.fr"),  # zero-width joiner
        ("email", "zoe\x00@example.fr"),
        ("postal_code", "750\x0011"),
    ],
)
@pytest.mark.parametrize("door", ["json", "form"])
def test_control_and_invisible_characters_are_refused_in_every_field(
    client: TestClient, slug: str, field: str, value: str, door: str
) -> None:
    sent = {"email": f"{unique('odd')}@example.fr", field: value}

    answer = (
        client.post(f"/api/petitions/{slug}/signatures", json=sent)
        if door == "json"
        else client.post(f"/api/petitions/{slug}/signatures", data=sent)
    )

    # Then a 422 naming the field, on both databases (a NUL once made PostgreSQL fail: 500)
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == field
    assert client.get(f"/api/petitions/{slug}").json()["count"] == 0


@pytest.mark.parametrize("email", ["a@-example.org", "x@exa_mple.org", "x@example.test"])
def test_addresses_the_validation_library_refuses_are_refused(
    client: TestClient, slug: str, email: str
) -> None:
    answer = client.post(f"/api/petitions/{slug}/signatures", json={"email": email})

    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "email"


def test_json_answers_the_consents_one_way_only(client: TestClient, slug: str) -> None:
    # Given a JSON signature answering with a flag and with the alias at once (they could
    # differ, and a consent must not be ambiguous)
    body = {"email": "both@example.fr", "consent_updates": True, "consents": {"fundraising": True}}

    # When it is posted
    answer = client.post(f"/api/petitions/{slug}/signatures", json=body)

    # Then it is refused, naming the alias, as the schema says (one body or the other)
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "consents"


def test_the_schema_tells_which_fields_a_signature_takes(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/petitions/{slug}/signatures"]
    bodies = operation["post"]["requestBody"]["content"]
    flags, keyed = bodies["application/json"]["schema"]["anyOf"]

    for schema in (flags, keyed, bodies["application/x-www-form-urlencoded"]["schema"]):
        assert schema["additionalProperties"] is False
        assert {"email", "first_name", "last_name", "postal_code"} <= set(schema["properties"])
        assert "signed_at" not in schema["properties"]
    for schema in (flags, bodies["application/x-www-form-urlencoded"]["schema"]):
        assert list(schema["patternProperties"]) == ["^consent_[a-z0-9_-]+$"]
    assert flags["patternProperties"]["^consent_[a-z0-9_-]+$"] == {"type": ["boolean", "null"]}
    assert flags["properties"]["consents"] == {"type": "null"}
    assert "patternProperties" not in keyed
    assert keyed["properties"]["email"]["format"] == "email"
    assert {"415", "422"} <= set(operation["post"]["responses"])
