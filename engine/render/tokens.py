"""Short signed tokens for the URLs in emails: clicks, unsubscribes, the rights page,
donation links, and the attribution reference a payment platform hands back.

A token carries the ids it stands for and a truncated HMAC-SHA256 of them (`hmac`, the
standard library's), so the public endpoints can trust it without a lookup and nobody
can mint one for another message or another link. It never carries an email address:
URLs end up in logs and referrers. A kind byte inside the MAC input keeps each kind from
opening another's door.

Layouts (big-endian, then base64url without padding); every tag is HMAC-SHA256(secret,
kind | the bytes before it) truncated to 12 bytes:
- click (kind b"c"): message id (8) | position (2) | tag, 30 characters.
- unsubscribe (b"u"): message id (8) | tag, 27 characters.
- rights (b"r"): the same layout: the supporter's page for their data
  (`/rights/{token}`).
- donation click (b"d"): message id (8) | position (2) | amount in cents (4) | frequency
  (1: 0 one-off, 1 monthly) | tag, 36 characters. The redirect adds the amount and
  frequency it carries to the donation page's URL: nobody can change them, nor the page
  (engine/api/tracking.py).
- confirmation (b"o"): pending signature id (8) | expiry, Unix seconds (4) | tag, 32
  characters: the double opt-in link (`/confirm/{token}`), refused once expired.
- reference (b"a"): message id (8) | tag, 27 characters. The attribution reference the
  donation page receives and the payment platform hands back with the gift: it names the
  email, nobody can make one up, and, handed to a third party, it opens no page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from functools import lru_cache

from engine.config import Secret, signing_key, verifying_keys
from engine.rules.ids import is_key

# 96 bits of tag: forging one needs ~2^95 online guesses, and the URL stays short.
_TAG_BYTES = 12
_CLICK = b"c"
_UNSUBSCRIBE = b"u"
_RIGHTS = b"r"
_DONATION = b"d"
_REFERENCE = b"a"
_CONFIRM = b"o"
FREQUENCIES = ("one-off", "monthly")
# Amounts travel as 4 unsigned bytes of cents.
MAX_DONATION_CENTS = 2**32 - 1
_CLICK_BYTES = 8 + 2 + _TAG_BYTES
_MESSAGE_BYTES = 8 + _TAG_BYTES
_DONATION_BYTES = 8 + 2 + 4 + 1 + _TAG_BYTES
_CONFIRM_BYTES = 8 + 4 + _TAG_BYTES


@lru_cache(maxsize=8)
def _keyed(secret: str | bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with `secret` and fed nothing: each tag starts from a copy.

    `HMAC.copy()` is the documented way to MAC many messages under one key without
    deriving the padded keys again for each (rendering signs every link of every email).
    """
    return hmac.new(secret.encode() if isinstance(secret, str) else secret, None, hashlib.sha256)


def _tag(secret: str | bytes, message: bytes) -> bytes:
    mac = _keyed(secret).copy()
    mac.update(message)
    return mac.digest()[:_TAG_BYTES]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(token: str, size: int) -> bytes | None:
    # Length first: it rejects junk cheaply and keeps the padding arithmetic exact.
    if len(token) != -(-size * 4 // 3) or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # Canonical form only: two spellings of one token would count as two clicks.
    return raw if len(raw) == size and _encode(raw) == token else None


def _signed(secret: Secret, kind: bytes, body: bytes) -> str:
    return _encode(body + _tag(signing_key(secret), kind + body))


def _verified(secret: Secret, kind: bytes, token: str, size: int) -> bytes | None:
    """The body of a well-formed token of this kind whose message id may be a key, signed
    under the current key or a fallback (a link in an email sent before a rotation)."""
    raw = _decode(token, size)
    if raw is None:
        return None
    body = raw[:-_TAG_BYTES]
    if not is_key(int.from_bytes(body[:8], "big")):  # 8 bytes hold ids no row can have
        return None
    # Constant-time: a timing difference would let a forger find the tag byte by byte.
    tag = raw[-_TAG_BYTES:]
    if not any(hmac.compare_digest(tag, _tag(key, kind + body)) for key in verifying_keys(secret)):
        return None
    return body


def click_token(secret: Secret, message_id: int, position: int) -> str:
    """The token for link `position` (0-based, < 65,536) of message `message_id`."""
    return _signed(secret, _CLICK, message_id.to_bytes(8, "big") + position.to_bytes(2, "big"))


def unsubscribe_token(secret: Secret, message_id: int) -> str:
    """The token of the one-click unsubscribe URL of message `message_id`."""
    return _signed(secret, _UNSUBSCRIBE, message_id.to_bytes(8, "big"))


def rights_token(secret: Secret, message_id: int) -> str:
    """The token of the rights page URL of message `message_id`."""
    return _signed(secret, _RIGHTS, message_id.to_bytes(8, "big"))


def reference_token(secret: Secret, message_id: int) -> str:
    """The attribution reference of message `message_id`, for the payment platform."""
    return _signed(secret, _REFERENCE, message_id.to_bytes(8, "big"))


def confirm_token(secret: Secret, pending_id: int, expires_at: datetime) -> str:
    """The token of the double opt-in link of pending signature `pending_id`."""
    expiry = min(max(int(expires_at.timestamp()), 0), 2**32 - 1)
    return _signed(secret, _CONFIRM, pending_id.to_bytes(8, "big") + expiry.to_bytes(4, "big"))


def read_confirm_token(secret: Secret, token: str, now: datetime) -> int | None:
    """The pending signature's id, or None for a malformed, forged or expired token."""
    body = _verified(secret, _CONFIRM, token, _CONFIRM_BYTES)
    if body is None or int.from_bytes(body[8:12], "big") <= now.timestamp():
        return None
    return int.from_bytes(body[:8], "big")


def read_click_token(secret: Secret, token: str) -> tuple[int, int] | None:
    """(message_id, position), or None for a malformed or forged token."""
    body = _verified(secret, _CLICK, token, _CLICK_BYTES)
    if body is None:
        return None
    return int.from_bytes(body[:8], "big"), int.from_bytes(body[8:10], "big")


def _read_message_token(secret: Secret, token: str, kind: bytes) -> int | None:
    body = _verified(secret, kind, token, _MESSAGE_BYTES)
    return None if body is None else int.from_bytes(body, "big")


def read_unsubscribe_token(secret: Secret, token: str) -> int | None:
    """The message id, or None for a malformed or forged token."""
    return _read_message_token(secret, token, _UNSUBSCRIBE)


def read_rights_token(secret: Secret, token: str) -> int | None:
    """The message id, or None for a malformed or forged token (an unsubscribe one too)."""
    return _read_message_token(secret, token, _RIGHTS)


def read_reference(secret: Secret, reference: str) -> int | None:
    """The message id a reference names, or None for one we did not make."""
    return _read_message_token(secret, reference.strip(), _REFERENCE)


def donation_token(
    secret: Secret, message_id: int, position: int, amount_cents: int, frequency: str
) -> str:
    """The token of a donation link: link `position` of message `message_id`, for a gift of
    `amount_cents` at `frequency` (one of FREQUENCIES)."""
    if not 0 < amount_cents <= MAX_DONATION_CENTS:
        raise ValueError(f"a donation link's amount must be positive, got {amount_cents} cents")
    body = (
        message_id.to_bytes(8, "big")
        + position.to_bytes(2, "big")
        + amount_cents.to_bytes(4, "big")
        + FREQUENCIES.index(frequency).to_bytes(1, "big")
    )
    return _signed(secret, _DONATION, body)


def read_donation_token(secret: Secret, token: str) -> tuple[int, int, int, str] | None:
    """(message_id, position, amount_cents, frequency), or None for a malformed or forged
    token."""
    body = _verified(secret, _DONATION, token, _DONATION_BYTES)
    if body is None or body[14] >= len(FREQUENCIES):
        return None
    return (
        int.from_bytes(body[:8], "big"),
        int.from_bytes(body[8:10], "big"),
        int.from_bytes(body[10:14], "big"),
        FREQUENCIES[body[14]],
    )
