"""What rendering produces: one personalised email, ready for any transport."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

# RFC 8058: with this header a provider may unsubscribe by POSTing to the
# List-Unsubscribe URL, without a person ever opening the page.
ONE_CLICK = "List-Unsubscribe=One-Click"


NO_SUBSTITUTIONS: Mapping[str, str] = MappingProxyType({})


class RenderedEmail(NamedTuple):  # a tuple: one is built per recipient, cheaper than a class
    subject: str
    preheader: str
    html: str
    text: str
    # Ours only (no From/To/Date): the send stage adds the envelope.
    headers: Mapping[str, str]
    template: str
    version: str
    message_id: int
    transactional: bool
    # When not empty, subject, html and text are skeletons: tag → this recipient's value
    # (engine.render.skeletons); replacing each tag by its value gives the email.
    substitutions: Mapping[str, str] = NO_SUBSTITUTIONS


def email_headers(
    *, message_id: int, journey: str, step: str, unsubscribe_url: str | None
) -> dict[str, str]:
    """X-Mobilise-* on every email; List-Unsubscribe only when a URL is given."""
    headers = dict(_step_headers(journey, step))
    headers["X-Mobilise-Message"] = str(message_id)
    if unsubscribe_url is not None:
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = ONE_CLICK
    return headers


@lru_cache(maxsize=1024)
def _step_headers(journey: str, step: str) -> tuple[tuple[str, str], ...]:
    """The headers shared by every email of a journey step, checked once per step."""
    for name, value in (("journey", journey), ("step", step)):
        # A newline in a header value would let it write headers of its own.
        if "\r" in value or "\n" in value:
            raise ValueError(f"{name} must be a single line, got {value!r}")
    return (("X-Mobilise-Journey", journey), ("X-Mobilise-Step", step))
