"""SmtpTransport against a real aiosmtpd server, with STARTTLS on a self-signed certificate."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from engine.send.smtp import SmtpTransport
from engine.send.transport import Accepted, Address, Permanent, Transient
from tests.fakes.messages import thank_you
from tests.fakes.smtp_server import (
    PASSWORD,
    USERNAME,
    Certificate,
    SmtpServer,
    running_smtp_server,
    self_signed_certificate,
)


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed_certificate(tmp_path)


@pytest.fixture
def smtp_server(certificate: Certificate) -> Iterator[SmtpServer]:
    with running_smtp_server(certificate) as server:
        yield server


def test_messages_arrive_over_starttls_with_both_parts_and_every_header(
    smtp_server: SmtpServer, certificate: Certificate, now: datetime
) -> None:
    # given an SMTP relay that offers STARTTLS
    transport = smtp_server.transport(certificate, now)
    # when two messages are sent on one connection
    results = transport.send([thank_you(1), thank_you(2)])
    # then both are accepted and arrive encrypted, whole
    assert results == [
        Accepted("msg-0000001", "<msg-0000001@example.org>"),
        Accepted("msg-0000002", "<msg-0000002@example.org>"),
    ]
    first = smtp_server.handler.received[0]
    assert first.tls is True
    assert first.mail_from == "petitions@example.org"
    assert first.rcpt_tos == ["signer1@example.net"]
    message = first.message
    assert message["Subject"] == "Merci Prénom1 !"
    for header, value in thank_you(1).headers.items():
        assert message[header] == value
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert "Bonjour Prénom1," in plain.get_content()
    assert "Pr&eacute;nom1" in html.get_content()


def test_refusals_are_per_recipient_and_classified(
    smtp_server: SmtpServer, certificate: Certificate, now: datetime
) -> None:
    # given recipients the server refuses for good, for now, and for content
    batch = [
        thank_you(1, to=Address("refuse-1@example.net")),
        thank_you(2, to=Address("later-2@example.net")),
        thank_you(3, subject="REJECT -first_name-"),
        thank_you(4),
    ]
    # when the batch is sent
    results = smtp_server.transport(certificate, now).send(batch)
    # then 5xx is permanent, 4xx transient, and the neighbour still goes through
    assert isinstance(results[0], Permanent)
    assert results[0].reason.startswith("550")
    assert isinstance(results[1], Transient)
    assert results[1].reason.startswith("451")
    assert isinstance(results[2], Permanent)
    assert results[2].reason.startswith("554")
    assert isinstance(results[3], Accepted)
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["signer4@example.net"]]


def test_required_starttls_without_it_sends_nothing(now: datetime) -> None:
    # given a relay without STARTTLS and a transport that requires it
    with running_smtp_server(None) as server:
        transport = SmtpTransport(server.host, server.port, starttls="required", clock=lambda: now)
        # when a message is sent  # then nothing leaves in clear
        [result] = transport.send([thank_you(1)])
        assert isinstance(result, Transient)
        assert result.attempted is False
        assert server.handler.received == []


def test_login_after_starttls(certificate: Certificate, now: datetime) -> None:
    with running_smtp_server(certificate, require_auth=True) as server:
        transport = server.transport(certificate, now)
        transport.username, transport.password = USERNAME, PASSWORD
        assert [r.state for r in transport.send([thank_you(1)])] == ["accepted"]
        transport.password = "wrong"
        assert [r.state for r in transport.send([thank_you(2), thank_you(3)])] == [
            "auth_failed",
            "auth_failed",
        ]


def test_an_unreachable_relay_is_transient(now: datetime) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SmtpTransport("127.0.0.1", port, timeout=2, clock=lambda: now)
    assert [r.state for r in transport.send([thank_you(1)])] == ["transient"]


def test_a_relay_that_never_greets_times_out_as_transient(now: datetime) -> None:
    # given a socket that accepts connections and never says a word
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        transport = SmtpTransport(
            "127.0.0.1", silent.getsockname()[1], timeout=0.3, clock=lambda: now
        )
        # when a message is sent  # then the explicit timeout ends the wait
        [result] = transport.send([thank_you(1)])
    assert isinstance(result, Transient)
    assert result.attempted is False
