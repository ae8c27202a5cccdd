"""Headers of a rendered email."""

from __future__ import annotations

import pytest

from engine.render.messages import ONE_CLICK, email_headers


def test_headers_in_order_with_one_click_unsubscribe() -> None:
    # Given a bulk email of a journey step, when its headers are built twice
    for message_id in (7, 8):
        headers = email_headers(
            message_id=message_id, journey="j", step="s", unsubscribe_url="https://x/u/t"
        )
        # Then each carries its own message id, in the same order of headers
        assert list(headers.items()) == [
            ("X-Mobilise-Journey", "j"),
            ("X-Mobilise-Step", "s"),
            ("X-Mobilise-Message", str(message_id)),
            ("List-Unsubscribe", "<https://x/u/t>"),
            ("List-Unsubscribe-Post", ONE_CLICK),
        ]
    # And a transactional email (no URL) has no List-Unsubscribe
    assert "List-Unsubscribe" not in email_headers(
        message_id=9, journey="j", step="s", unsubscribe_url=None
    )


@pytest.mark.parametrize(("journey", "step"), [("j\r\nBcc: x", "s"), ("j", "s\nX: y")])
def test_a_line_break_in_journey_or_step_is_refused_every_time(journey: str, step: str) -> None:
    # Given a journey or step name that would start a header of its own
    for _ in range(2):  # the check is cached per step: a refusal must not be
        # When headers are built, then they are refused
        with pytest.raises(ValueError, match="single line"):
            email_headers(message_id=1, journey=journey, step=step, unsubscribe_url=None)
