"""Click and unsubscribe tokens: round trips, and forgeries refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.config import Keys
from engine.render import tokens
from engine.render.shared import Hole

SECRET = "test-secret"


def test_click_token_round_trips() -> None:
    # Given a message and a link position
    # When the token is made and read back with the same secret
    token = tokens.click_token(SECRET, 123_456_789, 4)
    # Then it gives back exactly those ids, in a short URL-safe string
    assert tokens.read_click_token(SECRET, token) == (123_456_789, 4)
    assert len(token) == 30
    assert token.replace("-", "").replace("_", "").isalnum()


def test_unsubscribe_token_round_trips() -> None:
    token = tokens.unsubscribe_token(SECRET, 2**63 - 1)
    assert tokens.read_unsubscribe_token(SECRET, token) == 2**63 - 1


def raw(token: str) -> bytes:
    """A token's bytes: base64url without its padding."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.mark.parametrize("position", [0, 6, 7, 65_535])
def test_the_click_tag_is_hmac_sha256_over_kind_and_ids(position: int) -> None:
    # Given the documented construction: HMAC-SHA256 of b"c", message id and position
    ids = struct.pack(">QH", 42, position)
    mac = hmac.digest(SECRET.encode(), b"c" + ids, hashlib.sha256)
    # When a token is made, then it is the ids followed by the MAC's first 12 bytes
    assert raw(tokens.click_token(SECRET, 42, position)) == ids + mac[:12]


def test_a_neighbours_tag_does_not_verify() -> None:
    # Given the token of link 6, when its position is changed to 7
    found = raw(tokens.click_token(SECRET, 42, 6))
    forged = base64.urlsafe_b64encode(found[:8] + (7).to_bytes(2, "big") + found[10:])
    # Then it is refused: each link has a tag of its own
    assert tokens.read_click_token(SECRET, forged.rstrip(b"=").decode()) is None


@pytest.mark.parametrize("count", range(7))
@pytest.mark.parametrize("message_id", [0, 77, 2**40 + 3, 2**63 - 1])
@pytest.mark.parametrize("secret", [SECRET, "k" * 100, b"\x00raw"])
def test_an_emails_urls_carry_the_single_tokens(
    secret: str | bytes, message_id: int, count: int
) -> None:
    # Given one email's links signed together
    positions = range(0, count * 2, 2)
    sign = partial(Hole.url, secret=secret, message_id=message_id, base="https://m.org")
    unsubscribe = sign(Hole("u"))
    clicks = {position: sign(Hole("c", position)) for position in positions}
    # Then each URL carries exactly the token signed alone, for the positions asked only
    assert unsubscribe == f"https://m.org/u/{tokens.unsubscribe_token(secret, message_id)}"
    assert clicks == {
        p: f"https://m.org/c/{tokens.click_token(secret, message_id, p)}" for p in positions
    }


def test_a_long_secret_works_like_hmac() -> None:
    secret = "k" * 100
    payload = struct.pack(">Q", 9)
    expected = hmac.digest(secret.encode(), b"u" + payload, hashlib.sha256)[:12]
    assert raw(tokens.unsubscribe_token(secret, 9)) == payload + expected


def test_another_secret_is_refused() -> None:
    token = tokens.click_token(SECRET, 1, 0)
    assert tokens.read_click_token("other-secret", token) is None


@pytest.mark.parametrize("index", [0, 5, 12, 29])
def test_any_changed_character_is_refused(index: int) -> None:
    # Given a valid token, when one character changes (ids or MAC)
    token = tokens.click_token(SECRET, 1000, 2)
    swapped = "A" if token[index] != "A" else "B"
    forged = token[:index] + swapped + token[index + 1 :]
    # Then it is not accepted
    assert tokens.read_click_token(SECRET, forged) is None


def test_a_forged_position_is_refused() -> None:
    # Given a real token for link 0, when its position bytes are rewritten to 1
    found = raw(tokens.click_token(SECRET, 5, 0))
    forged = base64.urlsafe_b64encode(found[:8] + (1).to_bytes(2, "big") + found[10:])
    # Then the MAC no longer matches
    assert tokens.read_click_token(SECRET, forged.rstrip(b"=").decode()) is None


@pytest.mark.parametrize("junk", ["", "abc", "x" * 30, "é" * 30, "A" * 29 + "=", "not a token!!!"])
def test_junk_is_refused(junk: str) -> None:
    assert tokens.read_click_token(SECRET, junk) is None
    assert tokens.read_unsubscribe_token(SECRET, junk) is None


def test_kinds_are_not_interchangeable() -> None:
    # An unsubscribe token is never a click token of the same message, and back.
    unsubscribe = tokens.unsubscribe_token(SECRET, 7)
    click = tokens.click_token(SECRET, 7, 0)
    assert tokens.read_click_token(SECRET, unsubscribe) is None
    assert tokens.read_unsubscribe_token(SECRET, click) is None


def test_no_email_address_inside() -> None:
    # The token only carries ids: decoding it shows 8 + 2 bytes of ids and a MAC.
    found = raw(tokens.click_token(SECRET, 31, 1))
    assert len(found) == 22
    assert struct.unpack(">QH", found[:10]) == (31, 1)
    assert b"@" not in found[:10]


@given(
    message_id=st.integers(min_value=1, max_value=2**63 - 1),
    position=st.integers(min_value=0, max_value=2**16 - 1),
)
def test_every_id_round_trips(message_id: int, position: int) -> None:
    assert tokens.read_click_token(SECRET, tokens.click_token(SECRET, message_id, position)) == (
        message_id,
        position,
    )
    assert tokens.read_unsubscribe_token(SECRET, tokens.unsubscribe_token(SECRET, message_id)) == (
        message_id
    )


@given(message_id=st.one_of(st.just(0), st.integers(min_value=2**63, max_value=2**64 - 1)))
def test_a_well_signed_token_for_an_id_no_message_can_have_reads_as_nothing(
    message_id: int,
) -> None:
    # 0 is the previews' id; 2^63 and above fit the token's 8 bytes but no database key
    assert tokens.read_click_token(SECRET, tokens.click_token(SECRET, message_id, 0)) is None
    assert (
        tokens.read_unsubscribe_token(SECRET, tokens.unsubscribe_token(SECRET, message_id)) is None
    )


def test_a_rights_token_round_trips_and_is_no_unsubscribe_token() -> None:
    token = tokens.rights_token(SECRET, 42)
    assert tokens.read_rights_token(SECRET, token) == 42
    # Same layout, another kind: neither opens the other's page
    assert tokens.read_unsubscribe_token(SECRET, token) is None
    assert tokens.read_rights_token(SECRET, tokens.unsubscribe_token(SECRET, 42)) is None
    assert tokens.read_rights_token("other-secret", token) is None


def test_a_donation_token_carries_the_gift_signed() -> None:
    # Given link 3 of message 42, for a monthly gift of 25.50
    token = tokens.donation_token(SECRET, 42, 3, 2550, "monthly")
    # Then it reads back as such, and is not a click or an unsubscribe token
    assert tokens.read_donation_token(SECRET, token) == (42, 3, 2550, "monthly")
    assert len(token) == 36
    assert tokens.read_click_token(SECRET, token) is None
    assert tokens.read_unsubscribe_token(SECRET, token) is None
    assert tokens.read_donation_token(SECRET, tokens.click_token(SECRET, 42, 3)) is None
    # And another secret refuses it
    assert tokens.read_donation_token("another", token) is None


def test_a_donation_tokens_amount_cannot_be_changed() -> None:
    # Given a 20 € link, when its amount bytes are set to 2 € (or 2,000 €)
    raw = tokens._decode(tokens.donation_token(SECRET, 42, 1, 2000, "one-off"), 27)
    assert raw is not None
    for cents in (200, 200_000):
        forged = tokens._encode(raw[:10] + cents.to_bytes(4, "big") + raw[14:])
        # Then the token is refused
        assert tokens.read_donation_token(SECRET, forged) is None
    monthly = tokens._encode(raw[:14] + b"\x01" + raw[15:])
    assert tokens.read_donation_token(SECRET, monthly) is None


@pytest.mark.parametrize(("cents", "frequency"), [(0, "one-off"), (-5, "one-off"), (100, "yearly")])
def test_a_donation_token_needs_a_positive_amount_and_a_known_frequency(
    cents: int, frequency: str
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the function's own
        tokens.donation_token(SECRET, 1, 0, cents, frequency)


def test_a_reference_names_its_message_and_cannot_be_made_up() -> None:
    reference = tokens.reference_token(SECRET, 987_654)
    assert tokens.read_reference(SECRET, reference) == 987_654
    assert tokens.read_reference(SECRET, f"  {reference} ") == 987_654  # pasted with spaces
    # Another message's reference, an unsubscribe token of the same message, junk: refused
    raw = tokens._decode(reference, 20)
    assert raw is not None
    assert tokens.read_reference(SECRET, tokens._encode((1).to_bytes(8, "big") + raw[8:])) is None
    assert tokens.read_reference(SECRET, tokens.unsubscribe_token(SECRET, 987_654)) is None
    # A reference goes to the payment platform: it must never open the supporter's rights
    assert tokens.read_rights_token(SECRET, reference) is None
    assert tokens.read_reference(SECRET, tokens.rights_token(SECRET, 987_654)) is None
    assert tokens.read_reference(SECRET, "pay_123") is None
    assert tokens.read_reference("another", reference) is None


def test_after_a_rotation_tokens_are_signed_with_the_new_key_and_old_ones_still_read() -> None:
    # Given the keys after a rotation: the new one, the old one as a fallback
    old, new = b"old-key", b"new-key"
    keys = Keys(new, (old,))

    # When tokens are made now, and read (some made before the rotation)
    made_now = tokens.click_token(keys, 42, 3)
    made_before = [
        tokens.read_click_token(keys, tokens.click_token(old, 42, 3)),
        tokens.read_unsubscribe_token(keys, tokens.unsubscribe_token(old, 42)),
        tokens.read_rights_token(keys, tokens.rights_token(old, 42)),
        tokens.read_reference(keys, tokens.reference_token(old, 42)),
        tokens.read_donation_token(keys, tokens.donation_token(old, 42, 1, 3000, "monthly")),
    ]

    # Then the new ones are the new key's, and the old ones still read
    assert made_now == tokens.click_token(new, 42, 3)
    assert made_before == [(42, 3), 42, 42, 42, (42, 1, 3000, "monthly")]
    # and a key that is not among them opens nothing
    assert tokens.read_click_token(Keys(new), tokens.click_token(old, 42, 3)) is None
