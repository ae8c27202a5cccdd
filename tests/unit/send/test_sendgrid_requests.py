from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from engine.send import sendgrid_requests
from engine.send.transport import Address, Permanent
from tests.fakes.messages import thank_you


def test_requests_hold_at_most_the_batch_size() -> None:
    messages = [thank_you(i) for i in range(25)]
    planned = sendgrid_requests.plan(messages, batch_size=10)
    assert [len(r.positions) for r in planned] == [10, 10, 5]


def test_the_batch_size_is_capped_at_the_schema_limit() -> None:
    messages = [thank_you(i) for i in range(1001)]
    assert [len(r.positions) for r in sendgrid_requests.plan(messages, batch_size=5000)] == [
        1000,
        1,
    ]


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=120), st.integers(1, 12))
def test_no_request_repeats_an_address_and_none_is_lost(recipients: list[int], size: int) -> None:
    # given a batch where some supporters appear several times
    messages = [
        thank_you(i, to=Address(f"Signer{r}@Example.net")) for i, r in enumerate(recipients)
    ]
    # when it is planned
    planned = sendgrid_requests.plan(messages, batch_size=size)
    # then every message is in exactly one request, none over size, no address twice
    positions = [p for r in planned for p in r.positions]
    assert sorted(positions) == list(range(len(messages)))
    for request in planned:
        assert len(request.positions) <= size
        addresses = [messages[p].to.email.lower() for p in request.positions]
        assert len(addresses) == len(set(addresses))


def test_empty_subjects_are_refused_before_sending(now: datetime) -> None:
    checked = sendgrid_requests.precheck(thank_you(1, subject=" "), now=now)
    assert checked == Permanent("msg-0000001", "empty subject")


def test_too_many_categories_are_refused(now: datetime) -> None:
    message = thank_you(1, categories=tuple(f"c{i}" for i in range(11)))
    assert isinstance(sendgrid_requests.precheck(message, now=now), Permanent)


def test_a_body_lists_text_before_html_and_skips_empty_parts(now: datetime) -> None:
    body = sendgrid_requests.body([thank_you(1, text="")], now=now)
    assert [c["type"] for c in body["content"]] == ["text/html"]
    assert len(sendgrid_requests.encode(body)) > 1000


def test_substitution_size_is_counted_in_utf8_bytes(now: datetime) -> None:
    # given substitutions just under and just over 10,000 bytes of two-byte characters
    under = thank_you(1, substitutions={"-x-": "é" * 4990})
    over = thank_you(2, substitutions={"-x-": "é" * 5000})
    # when checked  # then only the one over the limit is rendered instead
    checked_under = sendgrid_requests.precheck(under, now=now)
    checked_over = sendgrid_requests.precheck(over, now=now)
    assert checked_under == under
    assert not isinstance(checked_over, Permanent)
    assert getattr(checked_over, "substitutions", None) == {}
