"""Gifts over HTTP, on both databases: `POST /api/donations` (manager key), what became of
a gift since (`POST /api/donations/refunds` and `/cancellations`) and the payment
platform's signed webhook `POST /webhooks/donations` (gifts, refunds, cancellations)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from engine.api.app import create_app
from engine.config import Settings
from engine.render import tokens
from engine.rules.staff import Role
from engine.store import apikeys, clicks
from engine.store.db import make_sessionmaker
from engine.store.models import Consent, Donation, Event, Supporter
from engine.track import donation_webhook
from tests.factories import sent_email, unique

SECRET = "test-secret"
HOOK_SECRET = "whsec-test-7c1d"
NOW = datetime(2026, 5, 25, 18, 0, tzinfo=UTC)


@pytest.fixture
def client(committed_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=committed_url,
        secret_key=SECRET,
        donations_webhook_secret=HOOK_SECRET,
        timezone="Europe/Paris",
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield client


def key(engine: Engine, role: Role) -> dict[str, str]:
    with make_sessionmaker(engine).begin() as session:
        _, made = apikeys.create(session, role=role, label="test", now=NOW)
    return {"Authorization": f"Bearer {made}"}


def donation(engine: Engine, external_id: str) -> Donation:
    with Session(engine) as session:
        found = session.scalar(select(Donation).where(Donation.external_id == external_id))
        assert found is not None
        return found


@pytest.fixture
def reader(committed_engine: Engine) -> tuple[str, int]:
    """A supporter who clicked an update two days ago, and the message clicked."""
    email = f"{unique('reader')}@example.fr"
    with make_sessionmaker(committed_engine).begin() as session:
        person = Supporter(email=email, locale="fr", created_at=NOW - timedelta(days=9))
        session.add(person)
        session.flush()
        sent = NOW - timedelta(days=3)
        update_id = sent_email(session, person.id, "update", sent)
        clicks.record(
            session,
            message_id=update_id,
            position=0,
            supporter_id=person.id,
            now=NOW - timedelta(days=2),
        )
        return email, update_id


def test_a_manager_records_a_gift_once_attributed_by_last_click(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    email, update = reader
    pay = unique("pay")
    body = {"email": email.upper(), "amount": 30, "external_id": pay}

    first = client.post("/api/donations", json=body, headers=key(committed_engine, Role.manager))
    again = client.post("/api/donations", json=body, headers=key(committed_engine, Role.admin))

    assert first.status_code == 201, first.text
    assert first.json() == {
        "external_id": pay,
        "recorded": True,
        "new_supporter": False,
        "message_id": update,
        "attributed_by": "last_click",
        "unknown_reference": False,
    }
    assert again.status_code == 200
    assert again.json()["recorded"] is False
    gift = donation(committed_engine, pay)
    assert (gift.amount_cents, gift.currency, gift.frequency) == (3000, "EUR", "one-off")
    assert gift.donated_at == NOW  # dated by the server when not given


def test_an_admin_records_a_gift_as_a_manager_does(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    # Given a supporter who clicked an update, and an admin's key (the role above manager)
    email, update = reader
    pay = unique("pay")

    # When the admin records their gift
    answer = client.post(
        "/api/donations",
        json={"email": email, "amount": "45.00", "external_id": pay},
        headers=key(committed_engine, Role.admin),
    )

    # Then it is recorded, attributed to the update they clicked
    assert answer.status_code == 201, answer.text
    found = answer.json()
    assert (found["recorded"], found["message_id"], found["attributed_by"]) == (
        True,
        update,
        "last_click",
    )
    assert donation(committed_engine, pay).amount_cents == 4500


def test_a_gift_from_an_unknown_address_is_kept_and_said_so(
    client: TestClient, committed_engine: Engine
) -> None:
    email = f"{unique('new')}@example.fr"
    answer = client.post(
        "/api/donations",
        json={
            "email": email,
            "amount": "12,50",
            "frequency": "monthly",
            "external_id": unique("p"),
        },
        headers=key(committed_engine, Role.manager),
    )
    assert answer.status_code == 201
    assert answer.json()["new_supporter"] is True
    with Session(committed_engine) as session:
        giver = session.scalar(select(Supporter.id).where(Supporter.email == email))
        assert giver is not None
        assert session.scalars(select(Consent.id).where(Consent.supporter_id == giver)).all() == []


def test_fundraisers_read_only_and_keys_are_required(
    client: TestClient, committed_engine: Engine
) -> None:
    body = {"email": "x@example.fr", "amount": 10, "external_id": unique("p")}
    assert client.post("/api/donations", json=body).status_code == 401
    fundraiser = client.post(
        "/api/donations", json=body, headers=key(committed_engine, Role.fundraiser)
    )
    assert fundraiser.status_code == 403
    assert "manager" in fundraiser.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@example.fr", "amount": 0, "external_id": "p"}, "amount"),
        ({"email": "x@example.fr", "amount": 10}, "external_id"),
        ({"email": "x@example.fr", "amount": 10, "external_id": "p", "iban": "FR76"}, "iban"),
        ({"email": "x@example.fr", "amount": 10, "external_id": "p", "frequency": 3}, "frequency"),
        ({"email": "x", "amount": 10, "external_id": "p"}, "email"),
    ],
)
def test_a_bad_gift_is_a_422_naming_the_field(
    client: TestClient, committed_engine: Engine, body: dict[str, object], field: str
) -> None:
    answer = client.post("/api/donations", json=body, headers=key(committed_engine, Role.manager))
    assert answer.status_code == 422
    assert [p.get("field") for p in answer.json()["problems"]] == [field]


# --- the webhook


def post_event(
    client: TestClient,
    event: Mapping[str, object],
    *,
    at: datetime = NOW,
    secret: str = HOOK_SECRET,
    tamper: bytes = b"",
) -> Any:  # the TestClient's response
    raw = json.dumps(event).encode()
    stamp = str(int(at.timestamp()))
    headers = {
        donation_webhook.TIMESTAMP_HEADER: stamp,
        donation_webhook.SIGNATURE_HEADER: donation_webhook.signature(secret, stamp, raw),
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/donations", content=raw + tamper, headers=headers)


def test_a_signed_gift_with_a_reference_goes_to_that_email_once(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    email, update = reader
    pay = unique("pay")
    event = {
        "id": unique("evt"),
        "type": "gift",
        "data": {
            "email": email,
            "amount": "50.00",
            "currency": "EUR",
            "donated_at": "2026-05-25T19:30:00+02:00",
            "frequency": "one-off",
            "external_id": pay,
            "reference": tokens.reference_token(SECRET, update),
        },
    }

    first = post_event(client, event)
    replayed = post_event(client, event)

    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "recorded"
    assert first.json()["attributed_by"] == "reference"
    assert replayed.json() == {"event": event["id"], "outcome": "duplicate"}
    gift = donation(committed_engine, pay)
    assert (gift.amount_cents, gift.message_id, gift.attributed_by) == (5000, update, "reference")
    assert gift.donated_at == datetime(2026, 5, 25, 17, 30, tzinfo=UTC)
    with Session(committed_engine) as session:
        kept = session.scalars(
            select(Event.payload).where(Event.source_key == f"donations-webhook:{event['id']}")
        ).all()
    assert len(kept) == 1
    assert email not in json.dumps(kept)  # no address in the event log


def test_unsigned_forged_stale_or_unconfigured_requests_are_refused(
    client: TestClient, committed_url: str
) -> None:
    event = {
        "id": unique("evt"),
        "type": "gift",
        "data": {"email": "x@example.fr", "amount": 5, "external_id": unique("p")},
    }
    unsigned = client.post("/webhooks/donations", json=event)
    forged = post_event(client, event, secret="guessed")
    tampered = post_event(client, event, tamper=b" ")
    stale = post_event(client, event, at=NOW - timedelta(minutes=6))
    early = post_event(client, event, at=NOW + timedelta(minutes=6))
    with TestClient(
        create_app(Settings(database_url=committed_url, secret_key=SECRET), clock=lambda: NOW)
    ) as unconfigured:
        raw = json.dumps(event).encode()
        stamp = str(int(NOW.timestamp()))
        nothing = unconfigured.post(
            "/webhooks/donations",
            content=raw,
            headers={
                donation_webhook.TIMESTAMP_HEADER: stamp,
                donation_webhook.SIGNATURE_HEADER: donation_webhook.signature("", stamp, raw),
            },
        )
    answers = [unsigned, forged, tampered, stale, early, nothing]
    assert [a.status_code for a in answers] == [401] * 6
    assert "MOBILISE_DONATIONS_WEBHOOK_SECRET" in nothing.text
    # And within the tolerance it is accepted
    assert post_event(client, event, at=NOW - timedelta(minutes=4)).status_code == 200


def test_a_refund_before_its_gift_is_refused_then_applied_once_the_gift_is_in(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    email, _ = reader
    pay = unique("pay")
    refund = {"id": unique("evt"), "type": "refund", "data": {"external_id": pay}}
    gift = {
        "id": unique("evt"),
        "type": "gift",
        "data": {"email": email, "amount": 40, "donated_at": "2026-05-24", "external_id": pay},
    }

    early = post_event(client, refund)
    post_event(client, gift)
    retried = post_event(client, refund)
    replayed = post_event(client, refund)

    assert early.status_code == 404
    assert early.json()["problems"][0]["field"] == "data.external_id"
    assert retried.status_code == 200
    assert retried.json() == {"event": refund["id"], "outcome": "refunded", "already": False}
    assert replayed.json()["outcome"] == "duplicate"
    assert donation(committed_engine, pay).refunded_at == NOW


def paid_monthly(client: TestClient, email: str, **data: object) -> str:
    """A payment of 10 € of a monthly gift, through the webhook; its external id."""
    pay = unique("pay")
    gift = {"email": email, "amount": 10, "frequency": "monthly", "donated_at": "2026-05-01"}
    event = {"id": unique("evt"), "type": "gift", "data": gift | {"external_id": pay} | data}
    assert post_event(client, event).status_code == 200
    return pay


def test_a_cancelled_monthly_gift_is_dated(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    email, _ = reader
    pay = paid_monthly(client, email)
    cancel = {
        "id": unique("evt"),
        "type": "monthly_cancelled",
        "data": {"email": email, "cancelled_at": "2026-05-20T12:00:00Z"},
    }

    answer = post_event(client, cancel)
    unknown = post_event(
        client,
        {"id": unique("evt"), "type": "monthly_cancelled", "data": {"email": "nobody@example.fr"}},
    )

    assert answer.json() == {"event": cancel["id"], "outcome": "cancelled", "already": False}
    assert donation(committed_engine, pay).cancelled_at == datetime(2026, 5, 20, 12, tzinfo=UTC)
    assert unknown.status_code == 404


def test_a_cancellation_naming_a_subscription_ends_that_monthly_gift_alone(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    # Given a giver's payments of two monthly gifts, the platform's subscription ids given
    # as text and as a number
    email, _ = reader
    payments = {
        name: paid_monthly(client, email, subscription_id=subscription)
        for name, subscription in (("a", "sub_A"), ("b", 7_000_123))
    }

    # When the platform says the second one ended, naming its subscription
    cancel = {
        "id": unique("evt"),
        "type": "monthly_cancelled",
        "data": {"subscription_id": 7_000_123, "email": email, "cancelled_at": "2026-05-20"},
    }
    answer = post_event(client, cancel)
    unknown = post_event(
        client,
        {"id": unique("evt"), "type": "monthly_cancelled", "data": {"subscription_id": "sub_Z"}},
    )
    unnamed = post_event(client, {"id": unique("evt"), "type": "monthly_cancelled", "data": {}})
    # And a subscription the stored payments do not name ends, with its giver named, their
    # payments that name none (one made after the end above, so in force until now)
    older = paid_monthly(client, email, donated_at="2026-05-22")
    newly_named = post_event(
        client,
        {
            "id": unique("evt"),
            "type": "monthly_cancelled",
            "data": {"subscription_id": "sub_new", "email": email},
        },
    )

    # Then only its payments are dated cancelled; the other monthly gift stays in force
    assert answer.json() == {"event": cancel["id"], "outcome": "cancelled", "already": False}
    assert donation(committed_engine, payments["b"]).subscription_id == "7000123"
    assert donation(committed_engine, payments["b"]).cancelled_at is not None
    assert donation(committed_engine, payments["a"]).cancelled_at is None
    assert unknown.status_code == 404
    assert unknown.json()["problems"][0]["field"] == "data.subscription_id"
    assert unnamed.status_code == 422
    assert "data.subscription_id or data.email" in unnamed.json()["error"]
    assert newly_named.json()["outcome"] == "cancelled"
    with Session(committed_engine) as session:
        (logged,) = session.scalars(
            select(Event.payload).where(Event.source_key == f"donations-webhook:{cancel['id']}")
        )
    assert logged["subscription_id"] == "7000123"  # what it ended, and no address
    assert email not in json.dumps(logged)
    assert donation(committed_engine, older).cancelled_at == NOW
    assert donation(committed_engine, payments["a"]).cancelled_at is None


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "gift", "data": {}}, "id"),
        ({"id": "e", "type": "chargeback", "data": {}}, "type"),
        ({"id": "e", "type": "refund", "data": {"external_id": "p", "amount": 3}}, "data.amount"),
        ({"id": "e", "type": "gift", "data": {"email": "x@example.fr"}}, "amount"),
    ],
)
def test_an_event_this_webhook_does_not_take_is_a_422(
    client: TestClient, event: dict[str, object], field: str
) -> None:
    event = {**event, "id": unique("evt")} if "id" in event else event
    answer = post_event(client, event)
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == field


# --- refunds and cancellations recorded by staff


def record(client: TestClient, engine: Engine, **gift: object) -> str:
    pay = unique("pay")
    body = {"amount": 20, "donated_at": "2026-05-20", "external_id": pay, **gift}
    answer = client.post("/api/donations", json=body, headers=key(engine, Role.manager))
    assert answer.status_code == 201, answer.text
    return pay


def test_a_manager_records_a_refund_once_dated_now_by_default(
    client: TestClient, committed_engine: Engine, reader: tuple[str, int]
) -> None:
    # Given a recorded gift, attributed to the email clicked
    email, update = reader
    pay = record(client, committed_engine, email=email, donated_at="2026-05-24")
    manager = key(committed_engine, Role.manager)
    # When a manager records its refund, and an admin records it again later in the day
    first = client.post("/api/donations/refunds", json={"external_id": pay}, headers=manager)
    again = client.post(
        "/api/donations/refunds",
        json={"external_id": pay, "refunded_at": "2026-05-25T10:00:00Z"},
        headers=key(committed_engine, Role.admin),
    )
    # Then it is refunded once, dated now, and still attributed to its email
    assert first.status_code == 200, first.text
    assert first.json() == {"external_id": pay, "outcome": "refunded", "already": False}
    assert again.json() == {"external_id": pay, "outcome": "refunded", "already": True}
    gift = donation(committed_engine, pay)
    assert (gift.refunded_at, gift.message_id) == (NOW, update)


def test_a_manager_ends_a_monthly_gift_named_by_one_of_its_payments(
    client: TestClient, committed_engine: Engine
) -> None:
    # Given a giver's two monthly payments
    email = f"{unique('monthly')}@example.fr"
    april = record(
        client, committed_engine, email=email, frequency="monthly", donated_at="2026-04-20"
    )
    may = record(client, committed_engine, email=email, frequency="monthly")
    # When a manager records the cancellation, naming the last payment
    answer = client.post(
        "/api/donations/cancellations",
        json={"external_id": may, "cancelled_at": "21/05/2026 09:00"},
        headers=key(committed_engine, Role.manager),
    )
    # Then the monthly gift ends then, as the webhook's cancellation ends it
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"external_id": may, "outcome": "cancelled", "already": False}
    ended = datetime(2026, 5, 21, 7, 0, tzinfo=UTC)
    assert donation(committed_engine, april).cancelled_at == ended
    assert donation(committed_engine, may).cancelled_at == ended


def test_a_cancelled_payment_ends_its_subscriptions_payments_not_the_givers_other_monthly_gift(
    client: TestClient, committed_engine: Engine
) -> None:
    # Given a giver's payments of two monthly gifts, each naming its subscription
    email = f"{unique('monthly')}@example.fr"
    paid = {
        name: record(
            client,
            committed_engine,
            email=email,
            frequency="monthly",
            donated_at=day,
            subscription_id=subscription,
        )
        for name, day, subscription in (
            ("a-april", "2026-04-20", "mandate-A"),
            ("b-april", "2026-04-22", "mandate-B"),
            ("a-may", "2026-05-20", "mandate-A"),
        )
    }
    # When a manager records the cancellation of mandate A's last payment
    answer = client.post(
        "/api/donations/cancellations",
        json={"external_id": paid["a-may"], "cancelled_at": "2026-05-21"},
        headers=key(committed_engine, Role.manager),
    )
    # Then mandate A's payments end, mandate B's do not
    assert answer.status_code == 200, answer.text
    ended = {name: donation(committed_engine, pay).cancelled_at for name, pay in paid.items()}
    assert ended["a-april"] == ended["a-may"] is not None
    assert ended["b-april"] is None


def test_a_one_off_gift_naming_a_subscription_is_a_422(
    client: TestClient, committed_engine: Engine
) -> None:
    answer = client.post(
        "/api/donations",
        json={
            "email": f"{unique('x')}@example.fr",
            "amount": 20,
            "external_id": unique("pay"),
            "subscription_id": "mandate-C",
        },
        headers=key(committed_engine, Role.manager),
    )
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["field"] == "subscription_id"


@pytest.mark.parametrize("path", ["/api/donations/refunds", "/api/donations/cancellations"])
def test_an_unknown_gift_is_a_404_naming_it_and_fundraisers_cannot_change_gifts(
    client: TestClient, committed_engine: Engine, path: str
) -> None:
    ghost = unique("ghost")
    body = {"external_id": ghost}
    unknown = client.post(path, json=body, headers=key(committed_engine, Role.manager))
    fundraiser = client.post(path, json=body, headers=key(committed_engine, Role.fundraiser))
    anonymous = client.post(path, json=body)
    assert unknown.status_code == 404
    assert ghost in unknown.json()["error"]
    assert unknown.json()["problems"][0]["field"] == "external_id"
    assert fundraiser.status_code == 403
    assert "manager" in fundraiser.json()["error"]
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    ("path", "gift", "body", "status", "field"),
    [
        ("refunds", {}, {"refunded_at": "demain"}, 422, "refunded_at"),
        ("refunds", {}, {"cancelled_at": "2026-05-21"}, 422, "cancelled_at"),  # not this change's
        (
            "cancellations",
            {"frequency": "monthly"},
            {"cancelled_at": "2026-05-26"},  # in the future
            422,
            "cancelled_at",
        ),
        # Well formed, but the gift says otherwise
        ("refunds", {}, {"refunded_at": "2026-05-19"}, 409, "refunded_at"),  # before the gift
        ("cancellations", {}, {}, 409, "external_id"),  # a one-off gift is refunded
    ],
)
def test_a_change_that_cannot_be_is_refused_naming_the_field(
    client: TestClient,
    committed_engine: Engine,
    path: str,
    gift: dict[str, str],
    body: dict[str, str],
    status: int,
    field: str,
) -> None:
    pay = record(client, committed_engine, email=f"{unique('g')}@example.fr", **gift)
    answer = client.post(
        f"/api/donations/{path}",
        json={"external_id": pay, **body},
        headers=key(committed_engine, Role.manager),
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["problems"][0]["field"] == field
    assert donation(committed_engine, pay).refunded_at is None
    assert donation(committed_engine, pay).cancelled_at is None
