"""Who a supporter is: one normalised email, whatever the case, spacing or Unicode form."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

# Pragmatic address check: one @, no spaces, a dotted domain, sane lengths. The provider's
# bounce is the final judge; this catches typos and garbage at the door.
_EMAIL = re.compile(
    r"^[^\s@\"<>()\[\],;:\\]+@(?:[^\s@\"<>()\[\],;:\\.]+\.)+[^\s@\"<>()\[\],;:\\.]{2,}$"
)


def normalise_email(raw: str) -> str | None:
    """NFKC, trimmed, lower-cased; `None` if it is not an email address."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        return None
    local, _, domain = email.rpartition("@")
    if len(local) > 64 or ".." in email or local.startswith(".") or local.endswith("."):
        return None
    return email


@lru_cache(maxsize=65536)  # first names repeat a lot
def clean_name(raw: str | None, limit: int = 100) -> str | None:
    if raw is None:
        return None
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    return name[:limit] or None


def email_hash(email: str) -> str:
    """What a suppression keeps of an address: it survives erasure of the supporter, so an
    erased person who bounced or complained is still never emailed again."""
    return hashlib.sha256(email.encode()).hexdigest()
