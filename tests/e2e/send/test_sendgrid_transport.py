"""SendGridTransport through the real SDK to the local, schema-validating server."""

from __future__ import annotations

import dataclasses
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.send.sendgrid_api import SendGridTransport
from engine.send.transport import (
    Accepted,
    Address,
    Ambiguous,
    OutgoingMessage,
    Permanent,
    SendResult,
    Transient,
)
from tests.fakes.messages import thank_you
from tests.fakes.sendgrid_server import API_KEY, Delay, FakeSendGrid, Reply, Reset


def _transport(server: FakeSendGrid, now: datetime, **options: Any) -> SendGridTransport:
    """One request at a time unless a test asks for more, so that faults land predictably."""
    options.setdefault("concurrency", 1)
    return SendGridTransport(API_KEY, host=server.url, clock=lambda: now, **options)


def _states(results: list[SendResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.state] = counts.get(result.state, 0) + 1
    return counts


def test_a_large_batch_goes_in_requests_of_1000(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given 2,500 thank-you emails of one template version and variant
    messages = [thank_you(i) for i in range(2500)]
    # when they are sent
    transport = _transport(sendgrid_server, now, concurrency=3)
    results = transport.send(messages)
    transport.close()
    # then three schema-valid requests carry them all, each accepted with its X-Message-Id
    sizes = sorted(len(r.body["personalizations"]) for r in sendgrid_server.requests)
    assert sizes == [500, 1000, 1000]
    assert all(isinstance(r, Accepted) for r in results)
    provider_ids = {r.x_message_id for r in sendgrid_server.requests}
    assert {r.provider_id for r in results if isinstance(r, Accepted)} == provider_ids
    assert sorted(sendgrid_server.accepted_message_ids()) == [m.message_id for m in messages]


def test_no_request_lets_sendgrid_add_an_open_pixel_or_rewrite_links(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    """Privacy by design: whatever the account's defaults, SendGrid adds no open pixel,
    rewrites no link (ours are signed), adds no unsubscribe link of its own and no
    Google Analytics parameters."""
    # given a transport as `mobilise` builds it, and one that names only one setting
    _transport(sendgrid_server, now).send([thank_you(1)])
    _transport(sendgrid_server, now, tracking={"subscription_tracking": {"enable": False}}).send(
        [thank_you(2)]
    )
    # then every request the (schema-validating) server accepted switches each one off
    assert [r.status for r in sendgrid_server.requests] == [202, 202]
    for request in sendgrid_server.requests:
        assert request.body["tracking_settings"] == {
            "open_tracking": {"enable": False},
            "click_tracking": {"enable": False, "enable_text": False},
            "subscription_tracking": {"enable": False},
            "ganalytics": {"enable": False},
        }


def test_a_request_carries_content_once_and_recipients_apart(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given two messages of the same skeleton
    _transport(sendgrid_server, now).send([thank_you(1), thank_you(2)])
    # then the content is shared and each personalisation has its own values
    body = sendgrid_server.requests[0].body
    assert body["subject"] == "Merci -first_name- !"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["categories"] == ["journey:stop-reconnaissance-faciale", "step:thanked"]
    assert body["tracking_settings"]["click_tracking"] == {"enable": False, "enable_text": False}
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "signer1@example.net", "name": "Signataire 1"}]
    assert first["substitutions"]["-first_name-"] == "Prénom1"
    assert first["headers"]["List-Unsubscribe"] == "<https://mobilise.example.org/u/tok0000001>"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["headers"]["X-Mobilise-Message"] == "msg-0000001"
    # custom_args hold opaque ids only: no address, no name
    assert first["custom_args"] == {
        "journey": "stop-reconnaissance-faciale",
        "step": "thanked",
        "mobilise_message_id": "msg-0000001",
    }
    assert "send_at" not in first


def test_variants_and_template_versions_never_share_a_request(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    messages = [
        thank_you(1),
        thank_you(2, variant="b", subject="Un grand merci -first_name-"),
        thank_you(3),
        thank_you(4, template_version="thanked@2"),
    ]
    _transport(sendgrid_server, now).send(messages)
    assert sorted(len(r.body["personalizations"]) for r in sendgrid_server.requests) == [1, 1, 2]


def test_the_same_address_twice_goes_in_two_requests(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given two messages to one address (case differs) in one batch
    twin = thank_you(2, to=Address("SIGNER1@example.net"))
    # when sent  # then both are accepted, in separate requests
    results = _transport(sendgrid_server, now).send([thank_you(1), twin, thank_you(3)])
    assert _states(results) == {"accepted": 3}
    assert [len(r.body["personalizations"]) for r in sendgrid_server.requests] == [2, 1]


def test_send_at_is_kept_within_72_hours(sendgrid_server: FakeSendGrid, now: datetime) -> None:
    soon, later, past = now + timedelta(hours=71), now + timedelta(hours=73), now - timedelta(1)
    results = _transport(sendgrid_server, now).send(
        [thank_you(1, send_at=soon), thank_you(2, send_at=later), thank_you(3, send_at=past)]
    )
    assert results[1] == Transient(
        "msg-0000002",
        "send_at is more than 72 h ahead; SendGrid cannot schedule it yet",
        retry_after=later - timedelta(hours=72),
        attempted=False,
    )
    sent = sendgrid_server.requests[0].body["personalizations"]
    assert [p.get("send_at") for p in sent] == [int(soon.timestamp()), None]


def test_oversized_substitutions_are_sent_rendered_on_their_own(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    big = thank_you(2, substitutions={"-first_name-": "x" * 10_001})
    results = _transport(sendgrid_server, now).send([thank_you(1), big])
    assert _states(results) == {"accepted": 2}
    rendered = [
        r.body
        for r in sendgrid_server.requests
        if "substitutions" not in r.body["personalizations"][0]
    ]
    assert [b["subject"] for b in rendered] == ["Merci " + "x" * 10_001 + " !"]


def test_one_bad_address_named_by_sendgrid_fails_alone(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given a batch where SendGrid refuses one address and names it
    sendgrid_server.bad_addresses = {"signer7@example.net"}
    # when sent
    results = _transport(sendgrid_server, now).send([thank_you(i) for i in range(20)])
    # then only that message is permanent, the others go in one more request
    assert isinstance(results[7], Permanent)
    assert "Invalid email address" in results[7].reason
    assert _states(results) == {"accepted": 19, "permanent": 1}
    assert len(sendgrid_server.requests) == 2


def test_an_unnamed_bad_address_is_isolated_by_bisection(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given a refusal that does not say which personalisation is wrong
    sendgrid_server.bad_addresses = {"signer37@example.net"}
    sendgrid_server.bad_address_field = False
    # when 100 messages are sent
    results = _transport(sendgrid_server, now).send([thank_you(i) for i in range(100)])
    # then halving isolates the bad one in about 2·log2(100) requests
    assert isinstance(results[37], Permanent)
    assert _states(results) == {"accepted": 99, "permanent": 1}
    assert len(sendgrid_server.requests) <= 2 * 7 + 1
    assert sorted(sendgrid_server.accepted_message_ids()) == sorted(
        m for m in (thank_you(i).message_id for i in range(100)) if m != "msg-0000037"
    )


def test_a_refusal_of_the_shared_content_fails_the_request_without_splitting(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    sendgrid_server.faults.append(
        Reply(400, errors=({"message": "The from address is not verified", "field": "from"},))
    )
    results = _transport(sendgrid_server, now).send([thank_you(i) for i in range(10)])
    assert _states(results) == {"permanent": 10}
    assert len(sendgrid_server.requests) == 0  # the fault answered; nothing was accepted


def test_429_is_transient_until_the_rate_limit_resets(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given SendGrid rate-limits the first request
    reset = int(now.timestamp()) + 30
    sendgrid_server.faults.append(Reply(429, headers={"X-RateLimit-Reset": str(reset)}))
    # when two requests' worth is sent
    results = _transport(sendgrid_server, now, batch_size=5).send([thank_you(i) for i in range(10)])
    # then the first request's messages wait for the reset, the second's were not offered
    until = datetime.fromtimestamp(reset, UTC)
    assert all(isinstance(r, Transient) and r.retry_after == until for r in results)
    assert [r.attempted for r in results if isinstance(r, Transient)] == [True] * 5 + [False] * 5
    assert sendgrid_server.accepted == []


def test_a_halt_spares_the_requests_already_in_flight(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given three requests in flight at once, one of which is rate-limited
    sendgrid_server.faults.append(Reply(429))
    transport = _transport(sendgrid_server, now, batch_size=2, concurrency=3)
    # when five requests' worth is sent
    results = transport.send([thank_you(i) for i in range(10)])
    transport.close()
    # then the two in-flight neighbours are accepted and the last two requests wait
    assert _states(results) == {"accepted": 4, "transient": 6}
    untried = [r for r in results if isinstance(r, Transient) and not r.attempted]
    assert len(untried) == 4
    assert len(sendgrid_server.accepted) == 2


def test_5xx_is_transient(sendgrid_server: FakeSendGrid, now: datetime) -> None:
    sendgrid_server.faults.append(Reply(500, errors=({"message": "internal server error"},)))
    results = _transport(sendgrid_server, now).send([thank_you(1)])
    assert results == [
        Transient("msg-0000001", "SendGrid answered 500: internal server error", None)
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_the_batch(
    sendgrid_server: FakeSendGrid, now: datetime, status: int
) -> None:
    sendgrid_server.faults.append(Reply(status))
    results = _transport(sendgrid_server, now, batch_size=2).send([thank_you(i) for i in range(6)])
    assert _states(results) == {"auth_failed": 6}
    assert "stop sending and alert" in results[0].reason  # type: ignore[union-attr]
    assert sendgrid_server.requests == []  # only the refused request reached the server


def test_a_wrong_api_key_is_an_auth_failure(sendgrid_server: FakeSendGrid, now: datetime) -> None:
    transport = SendGridTransport("SG.wrong", host=sendgrid_server.url, clock=lambda: now)
    assert [r.state for r in transport.send([thank_you(1)])] == ["auth_failed"]


def test_other_4xx_is_permanent_and_stops_the_batch(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    sendgrid_server.faults.append(Reply(404, errors=({"message": "not found"},)))
    results = _transport(sendgrid_server, now, batch_size=1).send([thank_you(1), thank_you(2)])
    assert [r.state for r in results] == ["permanent", "transient"]


def test_a_timeout_after_sending_is_ambiguous(sendgrid_server: FakeSendGrid, now: datetime) -> None:
    # given SendGrid accepts the first request but answers after our timeout
    sendgrid_server.faults.append(Delay(seconds=10))
    # when two requests' worth is sent with a short timeout
    transport = _transport(sendgrid_server, now, batch_size=2, timeout=0.3)
    results = transport.send([thank_you(i) for i in range(4)])
    sendgrid_server.wait_for_requests(1)
    # then the first two are ambiguous (SendGrid did take them), the rest was not offered
    assert [r.state for r in results] == ["ambiguous", "ambiguous", "transient", "transient"]
    assert isinstance(results[0], Ambiguous)
    assert "timed out" in results[0].reason
    assert sendgrid_server.accepted_message_ids() == ["msg-0000000", "msg-0000001"]


def test_a_reset_after_sending_is_ambiguous(sendgrid_server: FakeSendGrid, now: datetime) -> None:
    sendgrid_server.faults.append(Reset())
    results = _transport(sendgrid_server, now).send([thank_you(1)])
    assert [r.state for r in results] == ["ambiguous"]


def test_a_refused_connection_is_transient_because_nothing_left(now: datetime) -> None:
    # given a port where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SendGridTransport(API_KEY, host=f"http://127.0.0.1:{port}", clock=lambda: now)
    # when two requests' worth is sent  # then all is transient, safe to retry at once
    results = transport.send([thank_you(1), thank_you(2, to=thank_you(1).to)])
    assert all(isinstance(r, Transient) for r in results)
    assert results[0].reason.startswith("not sent")  # type: ignore[union-attr]
    assert [r.attempted for r in results if isinstance(r, Transient)] == [True, False]


def test_messages_rendered_in_full_go_as_they_are(
    sendgrid_server: FakeSendGrid, now: datetime
) -> None:
    # given three thank-yous rendered per recipient (no substitutions), and two the same
    def rendered(index: int) -> OutgoingMessage:
        skeleton = thank_you(index)
        subject, html, text = skeleton.rendered()
        return dataclasses.replace(
            skeleton, subject=subject, html=html, text=text, substitutions={}
        )

    same = dataclasses.replace(rendered(1), message_id="msg-again", to=thank_you(9).to)
    messages = [rendered(1), rendered(2), same]
    # when they are sent
    results = _transport(sendgrid_server, now).send(messages)
    # then each content goes once, whole, with its recipients and no substitutions
    assert _states(results) == {"accepted": 3}
    bodies = [request.body for request in sendgrid_server.requests]
    assert sorted(len(body["personalizations"]) for body in bodies) == [1, 2]
    for body in bodies:
        plain, html = (part["value"] for part in body["content"])
        message = next(m for m in messages if m.html == html)
        assert (body["subject"], plain) == (message.subject, message.text)
        assert all("substitutions" not in p for p in body["personalizations"])
