"""A signature row, validated: what a web form or a CSV line says about one signer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence, Set
from datetime import UTC, datetime
from operator import itemgetter
from typing import NamedTuple
from zoneinfo import ZoneInfo

from engine.errors import Problem
from engine.rules.geo import place_of
from engine.rules.supporters import clean_name, parse_email
from engine.rules.tabular import (
    UNSEEN,
    alias_table,
    parse_flag,
    parse_timestamp,
    shown,
    unseen_character,
)

EMAIL_ALIASES = ("courriel", "e-mail", "mail", "adresse email", "adresse e-mail")
SIGNATURE_COLUMNS = alias_table(
    {
        "email": EMAIL_ALIASES,
        "first_name": ("prénom", "prenom", "firstname", "first name"),
        "last_name": ("nom", "lastname", "last name", "nom de famille"),
        "postal_code": ("code postal", "cp", "zip", "postcode", "zip code"),
        "signed_at": ("date", "date de signature", "signé le", "signe le", "signed"),
        "consent_updates": ("consentement nouvelles", "accord nouvelles", "nouvelles"),
        "consent_fundraising": ("consentement dons", "accord dons", "dons"),
    }
)
_FIELDS = ("email", "first_name", "last_name", "postal_code", "signed_at")
# One vocabulary whatever the door (CSV header, form field, JSON key): these fields and a
# `consent_<purpose>` flag for each purpose the petition declares. A web signature is
# dated by the server: `signed_at` comes in files only.
CONSENT = "consent_"
FILE_FIELDS = frozenset(_FIELDS)
WEB_FIELDS = FILE_FIELDS - {"signed_at"}
NAME_MAX = 100  # first and last names, as the supporters' columns
_NAMES = frozenset(("first_name", "last_name"))
# A signature is dated between this and the moment it is recorded.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


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


def refused_names(
    names: Iterable[str], *, fields: Set[str], purposes: Set[str] | None, limit: int = 10
) -> list[Problem]:
    """The names a door does not take: fields outside `fields`, and consents for purposes the
    petition does not declare (`purposes` None: a door that takes no consent, gifts). One
    pass with a set lookup a name, which stops at the `limit`-th refused name (a body of
    60,000 unknown keys costs no more than 10)."""
    problems: list[Problem] = []
    for name in names:
        if name in fields:
            continue
        if purposes is not None and name.startswith(CONSENT):
            if name[len(CONSENT) :] in purposes:
                continue
            message = f"'{shown(name[len(CONSENT) :])}' is not a consent purpose of this petition"
            hint = "purposes: " + (", ".join(sorted(purposes)) or "none")
        else:
            message = "unknown field"
            hint = f"fields: {', '.join(sorted(fields))}"
            if purposes is not None:
                hint += f", {CONSENT}<purpose>"
        if len(problems) == limit:
            problems.append(Problem("and more names refused", hint=hint))
            break
        problems.append(Problem(f"{shown(name)}: {message}", field=shown(name), hint=hint))
    return problems


_BOTH = f"consents and {CONSENT}<purpose> fields: one or the other"


def json_fields(body: object, *, purposes: Set[str]) -> tuple[dict[str, str], list[Problem]]:
    """A JSON signature as the text fields of a form or a CSV line, or the problems that
    refuse it. Strings as they are; `consent_<purpose>` booleans (or, an alias, the object
    `consents: {purpose: boolean}`, without any `consent_<purpose>`) as yes/no; null as
    absent. The names are checked first, in one pass that stops early (`refused_names`),
    before any value is looked at."""
    if not isinstance(body, dict):
        return {}, [Problem("the body must be a JSON object", field="body")]
    alias = body.get("consents")
    if alias is not None and not isinstance(alias, dict):
        return {}, [Problem("consents: an object of purpose: true or false", field="consents")]
    given: dict[str, tuple[object, str]] = {
        name: (value, name) for name, value in body.items() if name != "consents"
    }
    if alias is not None:
        # One way to answer: two that could differ would leave the consent ambiguous.
        if any(name.startswith(CONSENT) for name in given):
            return {}, [Problem(_BOTH, field="consents", hint=f"send {CONSENT}<purpose> alone")]
        given |= {f"{CONSENT}{p}": (value, f"consents.{p}") for p, value in alias.items()}
    problems = refused_names(given, fields=WEB_FIELDS, purposes=purposes)
    if problems:
        return {}, problems
    fields: dict[str, str] = {}
    for name, (value, where) in given.items():
        if value is None:
            continue
        if name.startswith(CONSENT):
            if isinstance(value, bool):
                fields[name] = "yes" if value else "no"
                continue
            problems.append(Problem(f"{where}: true or false", field=where))
        elif isinstance(value, str):
            fields[name] = value
        else:
            problems.append(Problem(f"{where}: a string", field=where))
    return fields, problems


def _too_long(field_name: str, name: str) -> RowError:
    return RowError(field_name, f"longer than {NAME_MAX} characters ({len(name):,})")


def signer_parser(
    columns: Mapping[str, int], *, now: datetime, zone: ZoneInfo, purposes: Collection[str]
) -> Parser:
    """Validation for one column layout, of rows given as cells by position: a CSV import
    builds it once for its header line and calls it for each of its rows.

    `columns` maps canonical names (`email`, `consent_updates`, …) to cell positions; every
    row ends with one extra empty cell, which stands for the columns the layout lacks. The
    parser returns None for an empty row and raises RowError for a bad one."""
    ordered = sorted(purposes)
    wanted = [*_FIELDS, *(f"{CONSENT}{p}" for p in ordered)]
    # The other mapped columns (a consent the petition does not ask) only decide whether a
    # row is empty, as they did when rows were dicts.
    wanted_set = set(wanted)
    others = [i for name, i in columns.items() if name not in wanted_set]
    pick = itemgetter(*(columns.get(name, -1) for name in wanted), *others)
    flags = slice(len(_FIELDS), len(wanted))
    names = [*wanted, *(name for name in columns if name not in wanted_set)]

    def parse(cells: Sequence[str], line: int) -> SignatureRow | None:
        values: tuple[str, ...] = pick(cells)
        joined = "".join(values)
        if not joined.strip():
            return None
        # isprintable: the common case in one quick pass (what UNSEEN refuses is never
        # printable; tabs and non-ASCII spaces are not either, and go to the regex).
        if not joined.isprintable() and UNSEEN.search(joined):
            for name, value in zip(names, values, strict=True):
                refused = unseen_character(value, joiners=name in _NAMES)
                if refused is not None:
                    raise RowError(name, f"{refused} is not allowed")
        raw_email, raw_first, raw_last, raw_postal, raw_signed = values[:5]
        raw_email = raw_email.strip()
        try:
            email = parse_email(raw_email) if raw_email else None
        except ValueError as exc:
            raise RowError(
                "email", f"'{shown(raw_email)}' is not a valid email address: {exc}"
            ) from None
        first, last = clean_name(raw_first), clean_name(raw_last)
        if first is not None and len(first) > NAME_MAX:
            raise _too_long("first_name", first)
        if last is not None and len(last) > NAME_MAX:
            raise _too_long("last_name", last)
        raw_postal = raw_postal.strip()
        place = place_of(raw_postal) if raw_postal else None
        if place is None and raw_postal:
            raise RowError("postal_code", f"'{shown(raw_postal)}' is not a French postal code")
        try:
            signed_at = parse_timestamp(raw_signed, zone)
        except ValueError as exc:
            raise RowError("signed_at", str(exc)) from None
        if signed_at is not None and not EARLIEST <= signed_at <= now:
            when = "in the future" if signed_at > now else "before 1900"
            raise RowError("signed_at", f"'{shown(raw_signed)}' is {when}")
        if email is None and not (first or last):
            raise RowError("email", "a row needs an email, or a name for a paper signature")
        consents: dict[str, bool] = {}
        for purpose, raw in zip(ordered, values[flags], strict=True):
            try:
                granted = parse_flag(raw)
            except ValueError as exc:
                raise RowError(f"{CONSENT}{purpose}", str(exc)) from None
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
