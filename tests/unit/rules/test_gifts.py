"""A gift row as exports write it: French or English headers, amounts with a comma, dates
in the campaign's zone; a bad row says which field and why."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.rules.gifts import (
    GIFT_COLUMNS,
    GiftRow,
    json_fields,
    parse_amount,
    parse_frequency,
    parse_gift,
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
    [("20", 2000), ("20.5", 2050), ("20,50", 2050), ("1 000,00 €", 100_000), ("7 EUR", 700)],
)
def test_amounts_as_people_write_them(raw: str, cents: int) -> None:
    assert parse_amount(raw) == cents


@pytest.mark.parametrize("raw", ["0", "0,00", "-5", "20.555", "vingt", "1e3", ""])
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
        ({"donated_at": "31/02/2026"}, "donated_at"),
        ({"donated_at": "2026-07-01"}, "donated_at"),  # after NOW
        ({"donated_at": ""}, "donated_at"),
        ({"frequency": "yearly"}, "frequency"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"reference": "a\u200bb"}, "reference"),
    ],
)
def test_a_bad_gift_names_its_field(values: dict[str, str], field: str) -> None:
    with pytest.raises(RowError) as exc:
        gift(**values)
    assert exc.value.field == field


def test_json_takes_the_vocabulary_and_numbers_refusing_the_rest() -> None:
    values, problems = json_fields({"email": "a@b.org", "amount": 12.5, "currency": None})
    assert (values, problems) == ({"email": "a@b.org", "amount": "12.5"}, [])
    _, problems = json_fields({"email": "a@b.org", "consent_updates": True, "iban": "FR76"})
    assert [p.field for p in problems] == ["consent_updates", "iban"]
    assert all("consent_<purpose>" not in (p.hint or "") for p in problems)
    _, problems = json_fields({"amount": True})
    assert [p.field for p in problems] == ["amount"]
    _, problems = json_fields(["not", "an", "object"])
    assert [p.field for p in problems] == ["body"]
