"""Clicks in: a signed link token read, the link's target found, the click recorded.

A donation link's token also carries an amount and a frequency, signed: its target is the
configured donation page with them and the email's attribution reference
(engine.render.links). Each kind of token opens only its kind of link. The click stores
neither the IP address nor the user agent (engine.store.clicks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy.orm import Session

from engine.render import tokens
from engine.render.links import DONATION_LINK, donation_page_url
from engine.store import clicks as click_store
from engine.store import links


@dataclass(frozen=True)
class Click:
    """What a valid token says: which link of which message, and for a donation link the
    gift it proposes (amount in cents, frequency)."""

    message_id: int
    position: int
    gift: tuple[int, str] | None = None


class Refused(Enum):
    UNKNOWN = "unknown"  # no such link in a sent message, or a token of the other kind
    NO_DONATION_PAGE = "no donation page"  # MOBILISE_DONATION_URL is not set


def read(secret: str | bytes, token: str) -> Click | None:
    """The click a token stands for; None for a malformed or forged one (no database
    work for those)."""
    found = tokens.read_click_token(secret, token)
    if found is not None:
        return Click(*found)
    donation = tokens.read_donation_token(secret, token)
    if donation is None:
        return None
    message_id, position, amount_cents, frequency = donation
    return Click(message_id, position, (amount_cents, frequency))


def follow(
    session: Session,
    click: Click,
    *,
    secret: str | bytes,
    donation_url: str | None,
    now: datetime,
    burst: timedelta,
) -> str | Refused:
    """Record the click and return the URL to redirect to, or why there is none (then
    nothing is recorded)."""
    target = links.target_of_message(session, click.message_id, click.position)
    if target is None or (target[0] == DONATION_LINK) != (click.gift is not None):
        return Refused.UNKNOWN
    url, supporter_id = target
    if click.gift is not None:
        if not donation_url:
            return Refused.NO_DONATION_PAGE
        url = donation_page_url(
            donation_url,
            amount_cents=click.gift[0],
            frequency=click.gift[1],
            reference=tokens.reference_token(secret, click.message_id),
        )
    click_store.record(
        session,
        message_id=click.message_id,
        position=click.position,
        supporter_id=supporter_id,
        now=now,
        burst=burst,
    )
    return url
