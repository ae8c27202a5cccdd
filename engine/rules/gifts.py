"""A gift row, validated: what a CSV line, an API call or a webhook says about one gift.

One vocabulary whatever the door (CSV header, JSON key): `email`, `amount`, `currency`,
`donated_at`, `frequency`, `external_id`, `reference` (the attribution reference the
donation page received from an email's button and the payment platform hands back) and,
for a payment of a monthly gift, `subscription_id` (the platform's id of that monthly gift,
so that ending it leaves the giver's other monthly gifts alone).

A payment platform's export also says what became of each gift since: `status` (paid,
refunded, or cancelled for a monthly gift) and the change's date, `refunded_at` or
`cancelled_at` (the names the webhook's refund and cancellation events use). Files take
them (`ROW_FIELDS`); the API and the webhook record gifts and, apart, their changes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Literal, NamedTuple, cast
from zoneinfo import ZoneInfo

from engine.errors import Problem
from engine.rules.signature_rows import EARLIEST, EMAIL_ALIASES, RowError, refused_names
from engine.rules.supporters import parse_email
from engine.rules.tabular import (
    BLANK,
    alias_table,
    header_key,
    parse_timestamp,
    shown,
    spelled_pattern,
    unseen_character,
)

GIFT_COLUMNS = alias_table(
    {
        "email": EMAIL_ALIASES,
        "amount": ("montant", "montant du don", "somme", "don"),
        "currency": ("devise", "monnaie"),
        "donated_at": ("date", "date du don", "date de don", "donné le", "donne le", "donated"),
        "frequency": ("fréquence", "périodicité", "type de don", "récurrence"),
        "external_id": (
            "id",
            "identifiant",
            "id externe",
            "identifiant externe",
            "id transaction",
            "transaction",
            "numéro de transaction",
        ),
        "reference": ("référence", "ref", "référence mobilise", "attribution"),
        "subscription_id": (
            "abonnement",
            "id abonnement",
            "id de l'abonnement",
            "identifiant d'abonnement",
            "identifiant de l'abonnement",
            "mandat",
            "id mandat",
            "subscription",
            "subscription id",
            "recurring id",
        ),
        "status": (
            "statut",
            "état",
            "statut du don",
            "statut du paiement",
            "état du paiement",
            "payment status",
        ),
        "refunded_at": (
            "remboursé le",
            "date de remboursement",
            "date du remboursement",
            "refund date",
        ),
        "cancelled_at": (
            "annulé le",
            "date d'annulation",
            "résilié le",
            "date de résiliation",
            "canceled at",
            "cancellation date",
        ),
    }
)
GIFT_FIELDS = frozenset(
    (
        "email",
        "amount",
        "currency",
        "donated_at",
        "frequency",
        "external_id",
        "reference",
        "subscription_id",
    )
)
# What became of the gift since, in a file's row (engine.intake.gift_imports).
STATUS_FIELDS = frozenset(("status", "refunded_at", "cancelled_at"))
ROW_FIELDS = GIFT_FIELDS | STATUS_FIELDS
REQUIRED = ("email", "amount", "donated_at", "external_id")
ID_MAX = 100  # external ids, references and subscription ids, as the donations' columns
# The numbers an id may be given as in JSON: whole, within 10^15, where a double is exact
# (and a JavaScript client keeps it; larger ids come as text): near the bounds, a schema
# validator that compares numbers as doubles and one that compares them exactly agree.
ID_LOWEST, ID_HIGHEST = -(10**15), 10**15
_IDS = ("external_id", "reference", "subscription_id")  # in the order a row is checked
Frequency = Literal["one-off", "monthly"]
_FREQUENCIES: dict[str, Frequency] = {
    **dict.fromkeys(
        ("one-off", "one off", "oneoff", "single", "ponctuel", "ponctuelle"), "one-off"
    ),
    **dict.fromkeys(("unique", "don unique", "once"), "one-off"),
    **dict.fromkeys(("monthly", "mensuel", "mensuelle", "par mois", "regular"), "monthly"),
}
# 20, 20.5, 20,50, 1 000,00 €, 20 EUR: what exports write. Up to ten million euros a gift.
_AMOUNT = re.compile(r"^0*([0-9]{1,7})(?:[.,]([0-9]{1,2}))?(?:€|eur)?$", re.IGNORECASE)
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
# The same rules as JSON Schema patterns, exact, so that the API's schema states them
# (engine/api/donations.py): blanks anywhere in an amount, which is more than zero.
_B = f"{BLANK}*"
_NONZERO = (
    f"(?:0{_B})*[1-9]{_B}(?:[0-9]{_B}){{0,6}}(?:[.,]{_B}(?:[0-9]{_B}){{1,2}})?"
    f"|(?:0{_B})+[.,]{_B}(?:[1-9]{_B}(?:[0-9]{_B})?|0{_B}[1-9]{_B})"
)
AMOUNT_PATTERN = f"^{_B}(?:{_NONZERO})(?:€{_B}|[eE]{_B}[uU]{_B}[rR]{_B})?$"
CURRENCY_PATTERN = f"^{_B}(?:[A-Za-z]{{3}})?{_B}$"
AMOUNT_MAX = 9_999_999.99
# A float is a multiple of a cent up to its own rounding (0.07 arrives as 0.07000000000000001
# from a client that computed it): further than this from one, it has a third decimal.
_CENT_TOLERANCE = Decimal("1e-6")


FREQUENCY_PATTERN = spelled_pattern(_FREQUENCIES)
# A frequency that says monthly (not blank, which is one-off): a gift naming its
# subscription must have one.
MONTHLY_PATTERN = spelled_pattern(
    (word for word, said in _FREQUENCIES.items() if said == "monthly"), blank=False
)

Change = Literal["refunded", "cancelled"]
Status = Literal["paid", Change]
# Values as platforms' exports spell them, compared as headers are (case, accents, blanks,
# `-` and `_` aside): `Remboursé`, `rembourse` and `REFUNDED` alike.
_STATUSES = alias_table(
    {
        "paid": (
            "payé",
            "payée",
            "réglé",
            "réglée",
            "validé",
            "validée",
            "autorisé",
            "succeeded",
            "completed",
        ),
        "refunded": ("remboursé", "remboursée", "refund", "remboursement"),
        "cancelled": ("canceled", "annulé", "annulée", "résilié", "résiliée", "arrêté"),
    }
)
# The date column that goes with each change.
STATUS_DATES: dict[Change, str] = {"refunded": "refunded_at", "cancelled": "cancelled_at"}


class GiftRow(NamedTuple):
    line: int
    email: str  # normalised
    amount_cents: int
    currency: str
    donated_at: datetime
    frequency: Frequency
    external_id: str
    reference: str | None
    status: Status = "paid"
    # The date of the refund or cancellation; None: the moment it is recorded.
    status_at: datetime | None = None
    # The monthly gift this payment is of, as the platform names it (None: not said).
    subscription_id: str | None = None


Parser = Callable[[Sequence[str], int], GiftRow | None]


def parse_amount(raw: str) -> int:
    """Cents, from `20`, `20.5`, `20,50`, `1 000,00 €`; ValueError unless positive."""
    match = _AMOUNT.match(_SPACES.sub("", raw))
    if match is None:
        raise ValueError(f"'{shown(raw)}' is not an amount (write 20, 20.50 or 20,50)")
    cents = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    if cents <= 0:
        raise ValueError(f"'{shown(raw)}': a gift is more than zero")
    return cents


def amount_text(value: float) -> str:
    """A JSON number as the text of an amount: `30.5` is `30.50`, `30` is `30.00`; a number
    with a third decimal (or none at all: NaN) is left as written, which `parse_amount`
    refuses."""
    if not math.isfinite(value):
        return str(value)
    cents = Decimal(repr(value)).scaleb(2)
    whole = cents.to_integral_value()
    if abs(cents - whole) > _CENT_TOLERANCE:
        return repr(value)
    return f"{whole.scaleb(-2):.2f}"


def parse_frequency(raw: str) -> Frequency:
    value = " ".join(raw.strip().lower().split())
    if not value:
        return "one-off"
    found = _FREQUENCIES.get(value)
    if found is None:
        raise ValueError(f"'{shown(raw)}' is not one-off or monthly (ponctuel or mensuel)")
    return found


def parse_status(raw: str) -> Status | None:
    """`paid`, `refunded` or `cancelled` (or their French names); None when blank."""
    if not raw.strip():
        return None
    found = _STATUSES.get(header_key(raw))
    if found is None:
        raise ValueError(
            f"'{shown(raw)}' is not paid, refunded or cancelled (payé, remboursé or annulé)"
        )
    return cast(Status, found)


def change_date_problem(at: datetime, *, donated_at: datetime, now: datetime) -> str | None:
    """Why a refund or cancellation cannot be dated `at`, or None: it comes after its gift
    and not after `now`."""
    if at > now:
        return f"'{at.isoformat()}' is in the future"
    if at < donated_at:
        return f"'{at.isoformat()}' is before the gift ({donated_at.isoformat()})"
    return None


def _status(values: Mapping[str, str], *, zone: ZoneInfo) -> tuple[Status, datetime | None]:
    """The row's status and the date of its change, from `status` and the date columns: a
    blank status with one date says the change; a date given for another status is
    refused."""
    try:
        said = parse_status(values["status"])
    except ValueError as exc:
        raise RowError("status", str(exc)) from None
    dates: dict[Change, datetime] = {}
    for change, name in STATUS_DATES.items():
        try:
            at = parse_timestamp(values[name], zone)
        except ValueError as exc:
            raise RowError(name, str(exc)) from None
        if at is not None:
            dates[change] = at
    if said is None and len(dates) > 1:
        raise RowError("status", "both refunded_at and cancelled_at: give the status")
    status: Status = next(iter(dates), "paid") if said is None else said
    other = sorted(dates.keys() - {status})
    if other:
        raise RowError(STATUS_DATES[other[0]], f"given, but the status is {status}")
    return status, dates.get(status) if status != "paid" else None


def gift_parser(columns: Mapping[str, int], *, now: datetime, zone: ZoneInfo) -> Parser:
    """Validation for one column layout (as engine.rules.signature_rows.signer_parser): rows given
    as cells by position, one extra empty cell standing for the columns the layout lacks.
    None for an empty row, RowError for a bad one."""
    names = sorted(ROW_FIELDS)
    pick = itemgetter(*(columns.get(name, -1) for name in names))

    def parse(cells: Sequence[str], line: int) -> GiftRow | None:
        values = dict(zip(names, pick(cells), strict=True))
        if not "".join(values.values()).strip():
            return None
        for name in names:
            unseen = unseen_character(values[name])
            if unseen is not None:
                raise RowError(name, f"{unseen} is not allowed")
            values[name] = values[name].strip()
        for name in REQUIRED:
            if not values[name]:
                raise RowError(name, "missing")
        try:
            email = parse_email(values["email"])
        except ValueError as exc:
            raise RowError(
                "email", f"'{shown(values['email'])}' is not a valid email address: {exc}"
            ) from None
        try:
            amount_cents = parse_amount(values["amount"])
        except ValueError as exc:
            raise RowError("amount", str(exc)) from None
        currency = values["currency"] or "EUR"
        if not _CURRENCY.match(currency):
            raise RowError("currency", f"'{shown(values['currency'])}' is not a currency (EUR)")
        currency = currency.upper()
        try:
            donated_at = parse_timestamp(values["donated_at"], zone)
        except ValueError as exc:
            raise RowError("donated_at", str(exc)) from None
        assert donated_at is not None  # required above
        if not EARLIEST <= donated_at <= now:
            when = "in the future" if donated_at > now else "before 1900"
            raise RowError("donated_at", f"'{shown(values['donated_at'])}' is {when}")
        try:
            frequency = parse_frequency(values["frequency"])
        except ValueError as exc:
            raise RowError("frequency", str(exc)) from None
        for name in _IDS:
            if len(values[name]) > ID_MAX:
                raise RowError(name, f"longer than {ID_MAX} characters")
        if values["subscription_id"] and frequency != "monthly":
            raise RowError(
                "subscription_id", "names a monthly gift; this one is one-off (frequency)"
            )
        status, status_at = _status(values, zone=zone)
        if status == "cancelled" and frequency != "monthly":
            raise RowError(
                "status", "cancelled is for a monthly gift (frequency); a one-off gift is refunded"
            )
        if status != "paid" and status_at is not None:
            problem = change_date_problem(status_at, donated_at=donated_at, now=now)
            if problem is not None:
                raise RowError(STATUS_DATES[status], problem)
        return GiftRow(
            line,
            email,
            amount_cents,
            currency,
            donated_at,
            frequency,
            values["external_id"],
            values["reference"] or None,
            status,
            status_at,
            values["subscription_id"] or None,
        )

    return parse


def json_fields(
    body: object, *, fields: frozenset[str] = GIFT_FIELDS
) -> tuple[dict[str, str], list[Problem]]:
    """A JSON object as the text fields of a CSV line, or the problems that refuse it:
    names outside `fields` are refused; strings as they are, an amount as a number of
    cents (`amount_text`), an id as a whole number of 64 bits, null as absent."""
    if not isinstance(body, dict):
        return {}, [Problem("the body must be a JSON object", field="body")]
    problems = refused_names(body, fields=fields, purposes=None)
    if problems:
        return {}, problems
    values: dict[str, str] = {}
    for name, value in body.items():
        if value is None:
            continue
        if isinstance(value, str):
            values[name] = value
        elif not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(Problem(f"{name}: a string", field=name))
        elif name == "amount":
            values[name] = amount_text(value)
        elif name not in _IDS:
            problems.append(Problem(f"{name}: a string", field=name))
        elif _whole(value) is not None and ID_LOWEST <= value <= ID_HIGHEST:
            values[name] = str(_whole(value))  # a platform's numeric id, as its digits
        else:
            problems.append(Problem(f"{name}: text, or a whole number up to 10^15", field=name))
    return values, problems


def _whole(value: float) -> int | None:
    if isinstance(value, int):
        return value
    return int(value) if value.is_integer() else None


def parse_gift(
    values: Mapping[str, str], *, now: datetime, zone: ZoneInfo, line: int = 1
) -> GiftRow:
    """One gift given by field name (API, webhook); RowError for a bad or empty one."""
    parse = gift_parser({name: i for i, name in enumerate(values)}, now=now, zone=zone)
    row = parse([*values.values(), ""], line)
    if row is None:
        raise RowError("email", "missing")
    return row
