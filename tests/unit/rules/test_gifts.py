"""A gift row as exports write it: French or English headers, amounts with a comma, dates
in the campaign's zone; a bad row says which field and why."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.gifts import (
    AMOUNT_PATTERN,
    FREQUENCY_PATTERN,
    GIFT_COLUMNS,
    MONTHLY_PATTERN,
    GiftRow,
    json_fields,
    parse_amount,
    parse_frequency,
    parse_gift,
    parse_status,
)
from engine.rules.signature_rows import RowError
from engine.rules.tabular import header_key

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def gift(**values: str) -> GiftRow:
    base = {
        "email": "Anne@Example.org ",
        "amount": "20",
        "donated_at": "24/05/2026 10:30",
        "external_id": "pay-1",
    }
    return parse_gift({**base, **values}, now=NOW, zone=PARIS)


def test_a_french_export_header_maps_to_the_vocabulary() -> None:
    headers = [
        "Courriel",
        "Montant",
        "Devise",
        "Date du don",
        "Fréquence",
        "Identifiant",
        "Référence",
    ]
    assert [GIFT_COLUMNS[header_key(h)] for h in headers] == [
        "email", "amount", "currency", "donated_at", "frequency", "external_id", "reference"
    ]  # fmt: skip


def test_an_export_says_what_became_of_each_gift_in_french_or_english() -> None:
    headers = ["Statut", "État du paiement", "Remboursé le", "Date d'annulation", "canceled_at"]
    assert [GIFT_COLUMNS[header_key(h)] for h in headers] == [
        "status", "status", "refunded_at", "cancelled_at", "cancelled_at"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("", None),
        ("Payé", "paid"),
        ("paid", "paid"),
        ("REMBOURSÉ", "refunded"),
        ("rembourse", "refunded"),  # an export that lost its accents
        ("Refunded", "refunded"),
        ("annulée", "cancelled"),
        ("canceled", "cancelled"),
        ("Résilié", "cancelled"),
    ],
)
def test_statuses_as_exports_spell_them(raw: str, status: str | None) -> None:
    assert parse_status(raw) == status


def test_a_refunded_or_cancelled_row_carries_its_change_and_its_date() -> None:
    # Given rows of an export that say what became of their gift
    refunded = gift(status="remboursé", refunded_at="28/05/2026 09:00")
    cancelled = gift(frequency="mensuel", status="annulé", cancelled_at="2026-05-30")
    undated = gift(status="refunded")
    # A date alone says the change
    implied = gift(frequency="monthly", cancelled_at="30/05/2026")
    # Then each says its change, dated in the campaign's zone, or left to when it is applied
    assert (refunded.status, refunded.status_at) == (
        "refunded",
        datetime(2026, 5, 28, 7, 0, tzinfo=UTC),
    )
    assert (cancelled.status, cancelled.status_at) == (
        "cancelled",
        datetime(2026, 5, 29, 22, 0, tzinfo=UTC),
    )
    assert (undated.status, undated.status_at) == ("refunded", None)
    assert implied.status == "cancelled"
    assert (gift().status, gift().status_at) == ("paid", None)


def test_a_monthly_payment_names_its_subscription_under_any_of_its_names() -> None:
    # Given a payment of a monthly gift with its mandate, a one-off gift with one, an id too
    # long, and the names exports give the column
    payment = gift(frequency="mensuel", subscription_id=" mandat-42 ")
    headers = ("Abonnement", "ID abonnement", "Mandat", "subscription_id", "Subscription ID")
    # Then the payment carries it; the others are refused, naming the field
    assert payment.subscription_id == "mandat-42"
    assert gift(frequency="monthly").subscription_id is None
    assert all(GIFT_COLUMNS[header_key(h)] == "subscription_id" for h in headers)
    for bad, why in (({}, "one-off"), ({"frequency": "monthly"}, "longer than 100")):
        with pytest.raises(RowError) as refused:
            gift(**bad, subscription_id="m" * (101 if bad else 3))
        assert refused.value.field == "subscription_id"
        assert why in str(refused.value)
    # In JSON, a platform's numeric id is its digits
    assert json_fields({"subscription_id": 7_000_123})[0] == {"subscription_id": "7000123"}


def test_a_gift_is_normalised() -> None:
    row = gift(frequency="Mensuel", reference=" AAAA ")
    assert row == GiftRow(
        1,
        "anne@example.org",
        2000,
        "EUR",
        datetime(2026, 5, 24, 8, 30, tzinfo=UTC),  # 10:30 in Paris
        "monthly",
        "pay-1",
        "AAAA",
    )


@pytest.mark.parametrize(
    ("raw", "cents"),
    [
        ("20", 2000),
        ("20.5", 2050),
        ("20,50", 2050),
        ("1 000,00 €", 100_000),
        ("7 EUR", 700),
        ("00000000020", 2000),  # leading zeros do not count among the seven digits
    ],
)
def test_amounts_as_people_write_them(raw: str, cents: int) -> None:
    assert parse_amount(raw) == cents


@pytest.mark.parametrize(
    "raw", ["0", "0,00", "-5", "20.555", "vingt", "1e3", "", "\u0662\u0660", "12345678"]
)
def test_what_is_not_an_amount_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="amount|more than zero"):
        parse_amount(raw)


@pytest.mark.parametrize(
    ("raw", "frequency"),
    [("", "one-off"), ("ponctuel", "one-off"), ("One-off", "one-off"), ("mensuelle", "monthly")],
)
def test_frequencies(raw: str, frequency: str) -> None:
    assert parse_frequency(raw) == frequency


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"email": "pas-une-adresse"}, "email"),
        ({"email": ""}, "email"),
        ({"amount": "0"}, "amount"),
        ({"currency": "euro"}, "currency"),
        ({"currency": "\ufb00a"}, "currency"),  # upper-cased, ﬀa would be FFA
        ({"donated_at": "31/02/2026"}, "donated_at"),
        ({"donated_at": "2026-07-01"}, "donated_at"),  # after NOW
        ({"donated_at": ""}, "donated_at"),
        ({"frequency": "yearly"}, "frequency"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"reference": "a\u200bb"}, "reference"),
        ({"status": "chargeback"}, "status"),
        ({"status": "annulé"}, "status"),  # a one-off gift is refunded, not cancelled
        ({"status": "refunded", "refunded_at": "demain"}, "refunded_at"),
        ({"status": "refunded", "refunded_at": "20/05/2026"}, "refunded_at"),  # before the gift
        ({"status": "refunded", "refunded_at": "2026-06-02"}, "refunded_at"),  # after NOW
        ({"status": "paid", "refunded_at": "28/05/2026"}, "refunded_at"),
        ({"status": "refunded", "cancelled_at": "28/05/2026"}, "cancelled_at"),
        (
            {"frequency": "monthly", "refunded_at": "28/05/2026", "cancelled_at": "29/05/2026"},
            "status",
        ),
    ],
)
def test_a_bad_gift_names_its_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(RowError) as exc:
        gift(**values)
    assert exc.value.field == field


def test_json_takes_the_vocabulary_and_numbers_refusing_the_rest() -> None:
    values, problems = json_fields({"email": "a@b.org", "amount": 12.5, "currency": None})
    assert (values, problems) == ({"email": "a@b.org", "amount": "12.50"}, [])
    _, problems = json_fields({"email": "a@b.org", "consent_updates": True, "iban": "FR76"})
    assert [p.field for p in problems] == ["consent_updates", "iban"]
    assert all("consent_<purpose>" not in (p.hint or "") for p in problems)
    _, problems = json_fields({"amount": True})
    assert [p.field for p in problems] == ["amount"]
    _, problems = json_fields(["not", "an", "object"])
    assert [p.field for p in problems] == ["body"]


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (12.5, "12.50"),
        (30, "30.00"),
        (0.07000000000000001, "0.07"),  # 7 * 0.01 computed by a client: a multiple of a cent
        (30.123, "30.123"),  # a third decimal: left as written, and so refused
        (5e-324, "0.00"),  # rounds to nothing: refused as zero
    ],
)
def test_a_json_amount_is_a_number_of_cents(number: float, text: str) -> None:
    # Given an amount sent as a JSON number; when it is read; then it is the text of cents
    values, _ = json_fields({"amount": number})
    assert values["amount"] == text


@pytest.mark.parametrize(
    ("number", "taken"),
    [(368, "368"), (-5, "-5"), (12.0, "12"), (10**15, "1000000000000000"), (10**15 + 1, None)],
)
def test_a_json_id_is_a_whole_number_within_ten_to_the_fifteen(
    number: float, taken: str | None
) -> None:
    values, problems = json_fields({"external_id": number, "reference": number})
    assert values.get("external_id") == taken
    assert len(problems) == (2 if taken is None else 0)
    _, problems = json_fields({"external_id": 1.5, "currency": 978})
    assert [p.field for p in problems] == ["external_id", "currency"]


_BLANKS = " \t\n\u00a0\u202f\u3000"


@given(st.text(alphabet=f"0123456789.,€eEuUrR-x\u0662{_BLANKS}", max_size=14))
def test_the_amount_pattern_of_the_schema_is_the_server_rule(raw: str) -> None:
    # The API's schema publishes AMOUNT_PATTERN: it matches exactly the amounts taken.
    try:
        parse_amount(raw.strip())
        taken = True
    except ValueError:
        taken = False
    assert (re.match(AMOUNT_PATTERN, raw) is not None) == taken


@given(st.text(alphabet=f"abcdefghijklmnopqrstuvwxyzMONTHLY-{_BLANKS}", max_size=12))
def test_the_frequency_pattern_of_the_schema_is_the_server_rule(raw: str) -> None:
    try:
        parse_frequency(raw)
        taken = True
    except ValueError:
        taken = False
    assert (re.match(FREQUENCY_PATTERN, raw) is not None) == taken


@given(st.text(alphabet=f"abcdefghijklmnopqrstuvwxyzMONTHLY-{_BLANKS}", max_size=12))
def test_the_monthly_pattern_of_the_schema_is_what_the_server_reads_as_monthly(raw: str) -> None:
    try:
        monthly = parse_frequency(raw) == "monthly"
    except ValueError:
        monthly = False
    assert (re.match(MONTHLY_PATTERN, raw) is not None) == monthly


@pytest.mark.parametrize("raw", ["monthly", " Par \t MOIS ", "one-off", "don unique", ""])
def test_the_frequency_pattern_takes_every_spelling(raw: str) -> None:
    assert re.match(FREQUENCY_PATTERN, raw)
    parse_frequency(raw)
