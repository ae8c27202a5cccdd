from __future__ import annotations

from datetime import datetime

import pytest

from engine.errors import Invalid
from engine.send.transport import (
    Accepted,
    Address,
    MemoryTransport,
    Permanent,
    apply_substitutions,
    is_opaque_id,
)
from tests.fakes.messages import thank_you


def test_rendered_applies_substitutions_to_subject_html_and_text() -> None:
    # given a skeleton message with a recipient's substitutions
    message = thank_you(7)
    # when it is rendered
    subject, html, text = message.rendered()
    # then every tag is replaced and none is left
    assert subject == "Merci Prénom7 !"
    assert "Pr&eacute;nom7" in html
    assert "-first_name" not in html
    assert "https://mobilise.example.org/u/tok0000007" in text


def test_longest_tag_wins_when_one_tag_prefixes_another() -> None:
    assert apply_substitutions("-a- -ab-", {"-a": "X", "-ab-": "Y"}) == "X- Y"


@pytest.mark.parametrize(
    ("value", "opaque"),
    [("msg-1", True), ("a:b.c_d-9", True), ("someone@example.org", False), ("", False)],
)
def test_opaque_ids_refuse_addresses_and_spaces(value: str, opaque: bool) -> None:
    assert is_opaque_id(value) is opaque


def test_custom_args_refuse_personal_data() -> None:
    with pytest.raises(Invalid, match="custom_args"):
        thank_you(1, custom_args={"email": "someone@example.org"})


@pytest.mark.parametrize("header", ["Subject", "to", "Content-Type", "Bad Name"])
def test_reserved_or_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(Invalid, match="header"):
        thank_you(1, headers={header: "x"})


def test_header_injection_is_refused() -> None:
    with pytest.raises(Invalid, match="line break"):
        thank_you(1, headers={"X-Test": "a\r\nBcc: victim@example.org"})


def test_naive_send_at_is_refused() -> None:
    with pytest.raises(Invalid, match="time zone"):
        thank_you(1, send_at=datetime(2026, 5, 13, 9, 30))  # noqa: DTZ001


def test_message_id_always_travels_in_custom_args() -> None:
    assert thank_you(3).all_custom_args["mobilise_message_id"] == "msg-0000003"


def test_memory_transport_keeps_messages_and_returns_scripted_outcomes() -> None:
    # given a memory transport told to refuse one message
    transport = MemoryTransport(outcomes={"msg-0000002": Permanent("msg-0000002", "bad")})
    # when a batch of three is sent
    results = transport.send([thank_you(1), thank_you(2), thank_you(3)])
    # then results come one per message, in order, and refused ones are not kept
    assert [r.state for r in results] == ["accepted", "permanent", "accepted"]
    assert isinstance(results[0], Accepted)
    assert sorted(transport.by_id()) == ["msg-0000001", "msg-0000003"]


def test_address_defaults_to_no_display_name() -> None:
    assert Address("a@example.org").name == ""


def test_a_message_cannot_change_after_it_is_built() -> None:
    headers = {"X-Test": "1"}
    message = thank_you(1, headers=headers)
    headers["X-Test"] = "2"
    assert message.headers["X-Test"] == "1"
    with pytest.raises(TypeError):
        message.headers["X-Test"] = "3"  # type: ignore[index]


def test_every_message_names_itself_in_a_header() -> None:
    bare = thank_you(4, headers={})
    assert bare.all_headers == {"X-Mobilise-Message": "msg-0000004"}
    assert thank_you(4).all_headers["X-Mobilise-Message"] == "msg-0000004"
    custom = thank_you(4, headers={"x-mobilise-message": "other"})
    assert custom.all_headers == {"x-mobilise-message": "other"}


def test_a_value_containing_a_tag_is_not_expanded_again() -> None:
    subs = {"-first_name-": "-click_url-", "-click_url-": "https://x.example/c/1"}
    assert apply_substitutions("-first_name- / -click_url-", subs) == (
        "-click_url- / https://x.example/c/1"
    )
