"""French formatting: exact strings, with U+00A0 as the one space character."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from engine.render import french

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (140_000, f"140{NBSP}000"),
        (999, "999"),
        (1_234_567, f"1{NBSP}234{NBSP}567"),
        (Decimal("1234.5"), f"1{NBSP}234,5"),
    ],
)
def test_number(value: int | Decimal, expected: str) -> None:
    assert french.number(value) == expected


@pytest.mark.parametrize(
    ("value", "cents", "expected"),
    [
        (15, True, f"15,00{NBSP}€"),
        (Decimal("5.1"), True, f"5,10{NBSP}€"),
        (1500, True, f"1{NBSP}500,00{NBSP}€"),
        (15, False, f"15{NBSP}€"),
        (Decimal("15.50"), False, f"15,50{NBSP}€"),
    ],
)
def test_money(value: int | Decimal, cents: bool, expected: str) -> None:
    assert french.money(value, cents=cents) == expected


def test_long_date() -> None:
    assert french.long_date(date(2024, 5, 13)) == "13 mai 2024"
    assert french.long_date(datetime(2024, 12, 1, 8, 0, tzinfo=UTC)) == "1 décembre 2024"


def test_no_narrow_space_anywhere() -> None:
    # CLDR's U+202F would mix two space characters within one email.
    assert "\u202f" not in french.number(10**9) + french.money(10**6)
