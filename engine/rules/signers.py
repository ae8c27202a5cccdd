"""A signature row, validated: what a web form or a CSV line says about one signer."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from engine.rules.geo import place_of
from engine.rules.supporters import clean_name, normalise_email
from engine.rules.tabular import alias_table, parse_flag, parse_timestamp

SIGNATURE_COLUMNS = alias_table(
    {
        "email": ("courriel", "e-mail", "mail", "adresse email", "adresse e-mail"),
        "first_name": ("prénom", "prenom", "firstname", "first name"),
        "last_name": ("nom", "lastname", "last name", "nom de famille"),
        "postal_code": ("code postal", "cp", "zip", "postcode", "zip code"),
        "signed_at": ("date", "date de signature", "signé le", "signe le", "signed"),
        "consent_updates": ("consentement nouvelles", "accord nouvelles", "nouvelles"),
        "consent_fundraising": ("consentement dons", "accord dons", "dons"),
    }
)


class SignatureRow(NamedTuple):
    """One valid signer; `email` is None for a paper signature (then `paper_key` is set).

    A NamedTuple, not a dataclass: imports build 140,000 of them and tuples are cheapest."""

    line: int
    email: str | None
    first_name: str | None
    last_name: str | None
    postal_code: str | None
    departement: str | None
    region: str | None
    paper_key: str | None
    signed_at: datetime
    # purpose -> granted (the wording version is the petition's, recorded with it)
    consents: dict[str, bool]

    @property
    def key(self) -> str:
        return self.email or f"paper:{self.paper_key}"


class RowError(ValueError):
    """Why a row was refused; `field` names the column."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _paper_key(
    first: str | None, last: str | None, postal: str | None, signed_at: datetime | None
) -> str:
    # A paper row has no identity but its content; the same sheet imported twice maps to
    # the same keys and so changes nothing. (Two namesakes in one postal code signing at the
    # same recorded time count once: the price of idempotent re-imports.)
    day = signed_at.isoformat() if signed_at else ""
    raw = "\x1f".join(((first or "").casefold(), (last or "").casefold(), postal or "", day))
    return hashlib.sha256(raw.encode()).hexdigest()


def parse_signer(
    values: Mapping[str, str],
    *,
    line: int,
    now: datetime,
    zone: ZoneInfo,
    purposes: Collection[str],
) -> SignatureRow | None:
    """Validate one row. None for an empty row; RowError for a bad one."""
    if not "".join(values.values()).strip():
        return None
    raw_email = values.get("email", "").strip()
    email = normalise_email(raw_email) if raw_email else None
    if raw_email and email is None:
        raise RowError("email", f"'{raw_email}' is not a valid email address")
    first, last = clean_name(values.get("first_name")), clean_name(values.get("last_name"))
    raw_postal = values.get("postal_code", "").strip()
    place = place_of(raw_postal) if raw_postal else None
    if raw_postal and place is None:
        raise RowError("postal_code", f"'{raw_postal}' is not a French postal code")
    try:
        signed_at = parse_timestamp(values.get("signed_at", ""), zone)
    except ValueError as exc:
        raise RowError("signed_at", str(exc)) from None
    if signed_at is not None and signed_at > now:
        raise RowError("signed_at", f"'{values['signed_at']}' is in the future")
    if email is None and not (first or last):
        raise RowError("email", "a row needs an email, or a name for a paper signature")
    consents: dict[str, bool] = {}
    for purpose in purposes:
        raw = values.get(f"consent_{purpose}", "")
        try:
            granted = parse_flag(raw)
        except ValueError as exc:
            raise RowError(f"consent_{purpose}", str(exc)) from None
        if granted is not None and email is not None:
            consents[purpose] = granted
    return SignatureRow(
        line=line,
        email=email,
        first_name=first,
        last_name=last,
        postal_code=place.postal_code if place else None,
        departement=place.departement if place else None,
        region=place.region if place else None,
        paper_key=None if email else _paper_key(first, last, raw_postal, signed_at),
        signed_at=signed_at or now,
        consents=consents,
    )
