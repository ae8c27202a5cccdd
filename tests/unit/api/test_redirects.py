"""A click's redirect: the headers Starlette's RedirectResponse would send, built once per URL."""

from __future__ import annotations

import pytest
from starlette.responses import RedirectResponse

from engine.api import tracking
from engine.track.clicks import Refused


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/a",
        "https://example.org/pétition?utm_source=email&x=1#signer",
        "https://example.org/a b/%C3%A9",
    ],
)
def test_a_redirect_sends_what_starlette_would(url: str) -> None:
    # When a click redirects to a stored URL
    answer = tracking.redirect(url)

    # Then the status and headers are RedirectResponse's own (the URL quoted as it quotes it)
    expected = RedirectResponse(url, status_code=302)
    assert (answer.status_code, answer.body) == (302, b"")
    assert answer.raw_headers == expected.raw_headers


def test_the_headers_are_built_once_per_url_and_each_answer_has_its_own() -> None:
    # Given a link clicked once
    url = "https://example.org/built-once"
    first = tracking.redirect(url)
    built = tracking._redirect_headers.cache_info()

    # When a middleware adds a header to that answer, and the link is clicked again
    first.raw_headers.append((b"x-added", b"by a middleware"))
    second = tracking.redirect(url)

    # Then the second answer came from the headers built for the first, without the addition
    after = tracking._redirect_headers.cache_info()
    assert (after.hits, after.misses) == (built.hits + 1, built.misses)
    assert second.raw_headers == RedirectResponse(url, status_code=302).raw_headers


@pytest.mark.parametrize("why", list(Refused))
def test_a_refusal_page_added_to_by_a_middleware_is_not_sent_with_the_addition_again(
    why: Refused,
) -> None:
    # Given a click on a link that leads nowhere, its answer added to in place
    first = tracking.refused(why)
    first.raw_headers.append((b"x-added", b"by a middleware"))

    # When the next such click is answered
    second = tracking.refused(why)

    # Then it is the same page, without the addition
    assert (second.status_code, second.body) == (first.status_code, first.body)
    assert (b"x-added", b"by a middleware") not in second.raw_headers
