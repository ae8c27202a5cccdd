"""Short signed tokens for click and unsubscribe URLs.

A token carries the ids it stands for and a truncated HMAC-SHA256 of them, so the
public endpoints can trust it without a lookup and nobody can mint one for another
message or another link. It never carries an email address: URLs end up in logs
and referrers.

Layouts (big-endian, then base64url without padding):
- click: message id (8 bytes) | position (2) | 12-byte tag, 30 characters. One
  HMAC-SHA256 over (b"c", message id, position // 2) gives 32 bytes: bytes 0-11 are
  the tag of the even position of the pair, bytes 12-23 the tag of the odd one. Each
  tag is a truncation of a MAC over the pair, in a window fixed by the position, so
  knowing one link's tag says nothing of its neighbour's; and a bulk send, which
  signs every link of every email, computes half as many HMACs.
- unsubscribe: message id (8) | HMAC-SHA256(b"u", message id) truncated to 12, 27
  characters.
- rights: the same layout with kind b"r": the supporter's page for their data
  (`/rights/{token}`). The kind byte keeps an unsubscribe token from opening it.
- donation click: message id (8) | position (2) | amount in cents (4) | frequency (1:
  0 one-off, 1 monthly) | HMAC-SHA256(b"d", all of those) truncated to 12, 36
  characters. The redirect adds the amount and frequency it carries to the donation
  page's URL: nobody can change them, nor the page (engine/api/tracking.py).
- reference: message id (8) | HMAC-SHA256(b"a", message id) truncated to 12, 27
  characters. The attribution reference the donation page receives and the payment
  platform hands back with the gift: it names the email, and nobody can make one up. Its
  own kind byte: a reference handed to the payment platform never opens the rights page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from engine.rules.ids import is_key


def _small_message_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (`_sha256`; `_sha2` from 3.12), else hashlib's (OpenSSL).

    Same digests; for the few bytes of a token, copying and finishing its state costs
    a fraction of OpenSSL 3's (the whole of `email_urls`: 17.4 → 14.0 µs).
    """
    for module, name in (("_sha256", "sha256"), ("_sha2", "sha256")):
        try:
            constructor: Callable[[bytes], Any] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        return constructor
    return hashlib.sha256


_sha256 = _small_message_sha256()

# 96 bits of tag: forging one needs ~2^95 online guesses, and the URL stays short.
_TAG_BYTES = 12
# A kind byte inside the MAC input: a click token is never an unsubscribe token.
_CLICK = b"c"
_UNSUBSCRIBE = b"u"
_RIGHTS = b"r"
_DONATION = b"d"
_REFERENCE = b"a"
FREQUENCIES = ("one-off", "monthly")
# Amounts travel as 4 unsigned bytes of cents.
MAX_DONATION_CENTS = 2**32 - 1
_CLICK_BYTES = 8 + 2 + _TAG_BYTES
_UNSUBSCRIBE_BYTES = 8 + _TAG_BYTES
_DONATION_BYTES = 8 + 2 + 4 + 1 + _TAG_BYTES
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_CLICK_CHARS = -(-_CLICK_BYTES * 4 // 3)


class _Hmac:
    """HMAC-SHA256 (RFC 2104) with the padded-key states hashed once per secret.

    `hmac.digest` re-derives them on every call; copying the two prepared states
    costs a third of that.
    """

    def __init__(self, secret: bytes) -> None:
        block = hashlib.sha256().block_size
        key = hashlib.sha256(secret).digest() if len(secret) > block else secret
        key = key.ljust(block, b"\0")
        self.inner = _sha256(bytes(b ^ 0x36 for b in key))
        self.outer = _sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        return self.finish(self.inner, message)

    def finish(self, inner_state: Any, message: bytes) -> bytes:
        inner = inner_state.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        mac: bytes = outer.digest()
        return mac


@lru_cache(maxsize=8)
def _hmac_for(secret: str | bytes) -> _Hmac:
    return _Hmac(secret.encode() if isinstance(secret, str) else secret)


def _click_tag(secret: str | bytes, message_id: int, position: int) -> bytes:
    pair_mac = _hmac_for(secret).digest(
        _CLICK + message_id.to_bytes(8, "big") + (position // 2).to_bytes(2, "big")
    )
    start = (position % 2) * _TAG_BYTES
    return pair_mac[start : start + _TAG_BYTES]


def _message_tag(secret: str | bytes, message_id: int, kind: bytes = _UNSUBSCRIBE) -> bytes:
    return _hmac_for(secret).digest(kind + message_id.to_bytes(8, "big"))[:_TAG_BYTES]


def _encode(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


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
    return _encode(ids + _click_tag(secret, message_id, position))


# Raw tokens padded to whole base64 quanta, so that one encoding serves every token of an
# email: base64 of `raw + zeros` starts with the unpadded encoding of `raw`.
_CLICK_SLOT = 24  # 22 bytes + 2 zeros: 32 characters, the token is the first 30
_UNSUBSCRIBE_SLOT = 21  # 20 bytes + 1 zero: 28 characters, the token is the first 27
_UNSUBSCRIBE_CHARS = -(-_UNSUBSCRIBE_BYTES * 4 // 3)


@lru_cache(maxsize=64)
def _pairs(count: int) -> tuple[tuple[bytes, bytes, bytes | None], ...]:
    """For links 0..count-1, by pair: the pair's index, its even and odd positions
    (None past the last link), as the bytes the tokens carry."""
    return tuple(
        (
            (pair // 2).to_bytes(2, "big"),
            pair.to_bytes(2, "big"),
            (pair + 1).to_bytes(2, "big") if pair + 1 < count else None,
        )
        for pair in range(0, count, 2)
    )


def email_urls(
    secret: str | bytes, message_id: int, count: int, *, base: str
) -> tuple[str, list[str]]:
    """The unsubscribe URL and the URLs of links 0..count-1 of one message, under `base`.

    The tokens of `unsubscribe_token` and `click_token`, faster: rendering signs
    every link of every email, and one base64 encoding of all of them (each raw token
    padded to whole base64 quanta) replaces one per token.
    """
    signer = _hmac_for(secret)
    ids = message_id.to_bytes(8, "big")
    outer = signer.outer
    inner = signer.inner.copy()
    inner.update(_UNSUBSCRIBE + ids)
    mac = outer.copy()
    mac.update(inner.digest())
    raw = [ids, mac.digest()[:_TAG_BYTES], b"\0"]
    click_inner = signer.inner.copy()
    click_inner.update(_CLICK + ids)
    for pair_index, even, odd in _pairs(count):
        inner = click_inner.copy()
        inner.update(pair_index)
        mac = outer.copy()
        mac.update(inner.digest())
        pair_mac = mac.digest()
        if odd is None:
            raw += (ids, even, pair_mac[:_TAG_BYTES], b"\0\0")
        else:
            raw += (ids, even, pair_mac[:_TAG_BYTES], b"\0\0")
            raw += (ids, odd, pair_mac[_TAG_BYTES : 2 * _TAG_BYTES], b"\0\0")
    encoded = binascii.b2a_base64(b"".join(raw), newline=False).translate(_URLSAFE).decode()
    unsubscribe = f"{base}/u/{encoded[:_UNSUBSCRIBE_CHARS]}"
    click = f"{base}/c/"
    start = _UNSUBSCRIBE_SLOT * 4 // 3
    step = _CLICK_SLOT * 4 // 3
    return unsubscribe, [
        click + encoded[at : at + _CLICK_CHARS] for at in range(start, start + count * step, step)
    ]


def read_click_token(secret: str | bytes, token: str) -> tuple[int, int] | None:
    """(message_id, position), or None for a malformed or forged token."""
    raw = _decode(token, _CLICK_BYTES)
    if raw is None:
        return None
    message_id, position = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:10], "big")
    if not is_key(message_id):  # 8 bytes hold ids no message can have (2^63 and above)
        return None
    # Constant-time: a timing difference would let a forger find the tag byte by byte.
    if not hmac.compare_digest(raw[10:], _click_tag(secret, message_id, position)):
        return None
    return message_id, position


def unsubscribe_token(secret: str | bytes, message_id: int) -> str:
    """The token of the one-click unsubscribe URL of message `message_id`."""
    return _encode(message_id.to_bytes(8, "big") + _message_tag(secret, message_id))


def read_unsubscribe_token(secret: str | bytes, token: str) -> int | None:
    """The message id, or None for a malformed or forged token."""
    return _read_message_token(secret, token, _UNSUBSCRIBE)


def rights_token(secret: str | bytes, message_id: int) -> str:
    """The token of the rights page URL of message `message_id`."""
    return _encode(message_id.to_bytes(8, "big") + _message_tag(secret, message_id, _RIGHTS))


def read_rights_token(secret: str | bytes, token: str) -> int | None:
    """The message id, or None for a malformed or forged token (an unsubscribe one too)."""
    return _read_message_token(secret, token, _RIGHTS)


def _read_message_token(secret: str | bytes, token: str, kind: bytes) -> int | None:
    raw = _decode(token, _UNSUBSCRIBE_BYTES)
    if raw is None:
        return None
    message_id = int.from_bytes(raw[:8], "big")
    if not is_key(message_id):
        return None
    if not hmac.compare_digest(raw[8:], _message_tag(secret, message_id, kind)):
        return None
    return message_id


def donation_token(
    secret: str | bytes, message_id: int, position: int, amount_cents: int, frequency: str
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
    return _encode(body + _hmac_for(secret).digest(_DONATION + body)[:_TAG_BYTES])


def read_donation_token(secret: str | bytes, token: str) -> tuple[int, int, int, str] | None:
    """(message_id, position, amount_cents, frequency), or None for a malformed or forged
    token."""
    raw = _decode(token, _DONATION_BYTES)
    if raw is None:
        return None
    body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if not hmac.compare_digest(tag, _hmac_for(secret).digest(_DONATION + body)[:_TAG_BYTES]):
        return None
    frequency = body[14]
    if frequency >= len(FREQUENCIES):
        return None
    return (
        int.from_bytes(body[:8], "big"),
        int.from_bytes(body[8:10], "big"),
        int.from_bytes(body[10:14], "big"),
        FREQUENCIES[frequency],
    )


def reference_token(secret: str | bytes, message_id: int) -> str:
    """The attribution reference of message `message_id`, for the payment platform."""
    return _encode(message_id.to_bytes(8, "big") + _message_tag(secret, message_id, _REFERENCE))


def read_reference(secret: str | bytes, reference: str) -> int | None:
    """The message id a reference names, or None for one we did not make."""
    return _read_message_token(secret, reference.strip(), _REFERENCE)
