"""The fake must be as strict as SendGrid, or the transport tests prove nothing."""

from __future__ import annotations

from typing import Any

from tests.fakes.sendgrid_server import FakeSendGrid


def _body(*addresses: str) -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": a}]} for a in addresses],
        "from": {"email": "petitions@example.org"},
        "subject": "Merci",
        "content": [{"type": "text/plain", "value": "Merci"}],
    }


def test_a_well_formed_body_passes(sendgrid_server: FakeSendGrid) -> None:
    assert sendgrid_server.check(_body("a@example.org", "b@example.org")) == []


def test_a_body_without_sender_fails_the_schema(sendgrid_server: FakeSendGrid) -> None:
    body = _body("a@example.org")
    del body["from"]
    assert [e["message"] for e in sendgrid_server.check(body)] == ["'from' is a required property"]


def test_more_than_1000_personalisations_fail_the_schema(sendgrid_server: FakeSendGrid) -> None:
    errors = sendgrid_server.check(_body(*(f"s{i}@example.org" for i in range(1001))))
    assert errors[0]["field"] == "personalizations"


def test_a_malformed_address_fails_the_schema(sendgrid_server: FakeSendGrid) -> None:
    errors = sendgrid_server.check(_body("a@example.org", "not-an-address"))
    assert errors[0]["field"] == "personalizations.1.to.0.email"


def test_the_same_address_twice_fails_the_request(sendgrid_server: FakeSendGrid) -> None:
    errors = sendgrid_server.check(_body("a@example.org", "A@example.org"))
    assert errors == [
        {"message": "duplicate address a@example.org", "field": "personalizations.1.to.0.email"}
    ]


def test_html_before_text_is_refused(sendgrid_server: FakeSendGrid) -> None:
    body = _body("a@example.org")
    body["content"] = [
        {"type": "text/html", "value": "<p>Merci</p>"},
        {"type": "text/plain", "value": "Merci"},
    ]
    assert sendgrid_server.check(body)[0]["field"] == "content"
