"""A signature row, validated: what a web form or a CSV line says about one signer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
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
_FIELDS = ("email", "first_name", "last_name", "postal_code", "signed_at")


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


Parser = Callable[[Sequence[str], int], SignatureRow | None]


def signer_parser(
    columns: Mapping[str, int], *, now: datetime, zone: ZoneInfo, purposes: Collection[str]
) -> Parser:
    """Validation for one column layout, of rows given as cells by position: a CSV import
    builds it once for its header line and calls it for each of its rows.

    `columns` maps canonical names (`email`, `consent_updates`, …) to cell positions; every
    row ends with one extra empty cell, which stands for the columns the layout lacks. The
    parser returns None for an empty row and raises RowError for a bad one."""
    ordered = sorted(purposes)
    wanted = [*_FIELDS, *(f"consent_{p}" for p in ordered)]
    # The other mapped columns (a consent the petition does not ask) only decide whether a
    # row is empty, as they did when rows were dicts.
    others = [i for name, i in columns.items() if name not in wanted]
    pick = itemgetter(*(columns.get(name, -1) for name in wanted), *others)
    flags = slice(len(_FIELDS), len(wanted))

    def parse(cells: Sequence[str], line: int) -> SignatureRow | None:
        values: tuple[str, ...] = pick(cells)
        if not "".join(values).strip():
            return None
        raw_email, raw_first, raw_last, raw_postal, raw_signed = values[:5]
        raw_email = raw_email.strip()
        email = normalise_email(raw_email) if raw_email else None
        if email is None and raw_email:
            raise RowError("email", f"'{raw_email}' is not a valid email address")
        first, last = clean_name(raw_first), clean_name(raw_last)
        raw_postal = raw_postal.strip()
        place = place_of(raw_postal) if raw_postal else None
        if place is None and raw_postal:
            raise RowError("postal_code", f"'{raw_postal}' is not a French postal code")
        try:
            signed_at = parse_timestamp(raw_signed, zone)
        except ValueError as exc:
            raise RowError("signed_at", str(exc)) from None
        if signed_at is not None and signed_at > now:
            raise RowError("signed_at", f"'{raw_signed}' is in the future")
        if email is None and not (first or last):
            raise RowError("email", "a row needs an email, or a name for a paper signature")
        consents: dict[str, bool] = {}
        for purpose, raw in zip(ordered, values[flags], strict=True):
            try:
                granted = parse_flag(raw)
            except ValueError as exc:
                raise RowError(f"consent_{purpose}", str(exc)) from None
            if granted is not None and email is not None:
                consents[purpose] = granted
        if place is None:
            return SignatureRow(
                line,
                email,
                first,
                last,
                None,
                None,
                None,
                None if email else _paper_key(first, last, raw_postal, signed_at),
                signed_at or now,
                consents,
            )
        return SignatureRow(
            line,
            email,
            first,
            last,
            place.postal_code,
            place.departement,
            place.region,
            None if email else _paper_key(first, last, raw_postal, signed_at),
            signed_at or now,
            consents,
        )

    return parse


def parse_signer(
    values: Mapping[str, str],
    *,
    line: int,
    now: datetime,
    zone: ZoneInfo,
    purposes: Collection[str],
) -> SignatureRow | None:
    """Validate one row given by column name. None for an empty row; RowError for a bad one."""
    parse = signer_parser(
        {name: i for i, name in enumerate(values)}, now=now, zone=zone, purposes=purposes
    )
    return parse([*values.values(), ""], line)
