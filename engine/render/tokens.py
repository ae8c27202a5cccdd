"""Short signed tokens for click and unsubscribe URLs.

A token carries the ids it stands for and a truncated HMAC-SHA256 of them (`hmac`, the
standard library's), so the public endpoints can trust it without a lookup and nobody
can mint one for another message or another link. It never carries an email address:
URLs end up in logs and referrers.

Layouts (big-endian, then base64url without padding):
- click: message id (8 bytes) | position (2) | tag (12), 30 characters; the tag is
  HMAC-SHA256(secret, b"c" | message id | position) truncated to 12 bytes.
- unsubscribe: message id (8) | tag (12), 27 characters; the tag is
  HMAC-SHA256(secret, b"u" | message id) truncated to 12 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import lru_cache

# 96 bits of tag: forging one needs ~2^95 online guesses, and the URL stays short.
_TAG_BYTES = 12
# A kind byte inside the MAC input: a click token is never an unsubscribe token.
_CLICK = b"c"
_UNSUBSCRIBE = b"u"
_CLICK_BYTES = 8 + 2 + _TAG_BYTES
_UNSUBSCRIBE_BYTES = 8 + _TAG_BYTES


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


def click_token(secret: str | bytes, message_id: int, position: int) -> str:
    """The token for link `position` (0-based, < 65,536) of message `message_id`."""
    ids = message_id.to_bytes(8, "big") + position.to_bytes(2, "big")
    return _encode(ids + _tag(secret, _CLICK + ids))


def unsubscribe_token(secret: str | bytes, message_id: int) -> str:
    """The token of the one-click unsubscribe URL of message `message_id`."""
    ids = message_id.to_bytes(8, "big")
    return _encode(ids + _tag(secret, _UNSUBSCRIBE + ids))


def email_urls(
    secret: str | bytes, message_id: int, count: int, *, base: str
) -> tuple[str, list[str]]:
    """The unsubscribe URL and the URLs of links 0..count-1 of one message, under `base`."""
    return f"{base}/u/{unsubscribe_token(secret, message_id)}", [
        f"{base}/c/{click_token(secret, message_id, position)}" for position in range(count)
    ]


def read_click_token(secret: str | bytes, token: str) -> tuple[int, int] | None:
    """(message_id, position), or None for a malformed or forged token."""
    raw = _decode(token, _CLICK_BYTES)
    if raw is None:
        return None
    # Constant-time: a timing difference would let a forger find the tag byte by byte.
    if not hmac.compare_digest(raw[10:], _tag(secret, _CLICK + raw[:10])):
        return None
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:10], "big")


def read_unsubscribe_token(secret: str | bytes, token: str) -> int | None:
    """The message id, or None for a malformed or forged token."""
    raw = _decode(token, _UNSUBSCRIBE_BYTES)
    if raw is None:
        return None
    if not hmac.compare_digest(raw[8:], _tag(secret, _UNSUBSCRIBE + raw[:8])):
        return None
    return int.from_bytes(raw[:8], "big")
