"""Who a supporter is: one normalised email, whatever the case, spacing or Unicode form."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache

import email_validator
from email_validator.rfc_constants import EMAIL_MAX_LENGTH

from engine.config import Secret, hashing_keys, signing_key

# Most addresses are plain ASCII ones that the library below accepts unchanged: they pass
# on this pattern alone (a subset of what it accepts, checked by a property test), since the
# library costs 21 us an address, 3 s of a 140,000-row import. Labels with `--` (Punycode and
# the R-LDH labels it refuses), special-use domains and anything non-ASCII go to the library.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[a-z0-9][a-z0-9-]{{0,61}})?[a-z]")
_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)
MAX_LOCAL = 64


# An address in an API's schema: one `parse_email` takes (a JSON Schema format names the
# kind, the server's rule is email-validator's), at most as long as email-validator allows.
EMAIL_SCHEMA: dict[str, object] = {
    "type": "string",
    "format": "email",
    "description": "an address email-validator takes (syntax only, no DNS look-up): at most"
    f" {EMAIL_MAX_LENGTH} characters, {MAX_LOCAL} before the @",
}


def parse_email(raw: str) -> str:
    """The address as the supporter's identity: NFKC, trimmed, lower-cased (the local part
    too, as always: existing supporters keep matching), validated by `email-validator`
    (syntax only: no DNS). ValueError says why an address is refused."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email.rpartition("@")[0]) > MAX_LOCAL:
        raise ValueError(f"more than {MAX_LOCAL} characters before the @-sign")
    if plain_address(email):
        return email
    try:
        email_validator.validate_email(email, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return email


def plain_address(email: str) -> bool:
    """A lower-case ASCII address that `email-validator` accepts as it is (see `PLAIN`)."""
    domain = email.rpartition("@")[2]
    return (
        len(email) <= EMAIL_MAX_LENGTH
        and PLAIN.fullmatch(email) is not None
        and "--" not in domain
        and domain.rpartition(".")[2] not in _SPECIAL_USE
    )


def normalise_email(raw: str) -> str | None:
    """`parse_email`, or None if it is not an email address."""
    try:
        return parse_email(raw)
    except ValueError:
        return None


@lru_cache(maxsize=65536)  # first names repeat a lot
def clean_name(raw: str | None) -> str | None:
    """NFC, whitespace collapsed; None when nothing is left."""
    if raw is None:
        return None
    return " ".join(unicodedata.normalize("NFC", raw).split()) or None


# Inside the MAC input: this hash of an address is never another use's MAC of the same text.
_EMAIL_HASH = b"mobilise.email-hash\x00"


def email_hash(email: str, secret: Secret) -> str:
    """What a suppression keeps of an address: it survives erasure of the supporter, so an
    erased person (or one who bounced or complained) is never emailed or imported again.

    Keyed (HMAC-SHA256 with the secret key): a plain hash of an address is found again by
    hashing a list of known addresses. Made with the current key; a hash kept before a
    rotation is matched under its fallback (`email_hashes`, docs/privacy.md)."""
    return _hashed(email, signing_key(secret))


def email_hashes(email: str, secret: Secret) -> tuple[str, ...]:
    """The address's hash under each key, the current one first, then the fallbacks and the
    leaked keys: what a suppression kept before a rotation of the secret key matches one
    of them."""
    return tuple(_hashed(email, key) for key in hashing_keys(secret))


def _hashed(email: str, secret: str | bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, _EMAIL_HASH + email.encode(), hashlib.sha256).hex()
