"""After-tax cost and the ask ladder: pure functions, exact amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.render import asks


def test_after_tax_uses_66_percent_by_default() -> None:
    # Given a 15 € gift and the default 66 % reduction, it costs 5,10 €
    assert asks.after_tax(15) == Decimal("5.10")


def test_after_tax_is_configurable() -> None:
    assert asks.after_tax(Decimal(100), Decimal("0.75")) == Decimal("25.00")
    assert asks.after_tax(Decimal(50), Decimal(0)) == Decimal("50.00")


def test_after_tax_rounds_half_up_to_the_cent() -> None:
    # 0.34 × 12.25 = 4.165 → 4.17
    assert asks.after_tax(Decimal("12.25")) == Decimal("4.17")


def test_after_tax_refuses_an_impossible_rate() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        asks.after_tax(10, Decimal(66))


@pytest.mark.parametrize("last_gift", [None, 0, Decimal(0)])
def test_first_time_donors_get_the_default_ladder(last_gift: Decimal | int | None) -> None:
    assert asks.ask_ladder(last_gift) == (Decimal(15), Decimal(30), Decimal(50))


@pytest.mark.parametrize(
    ("last_gift", "ladder"),
    [
        (20, (20, 30, 40)),
        (15, (15, 25, 30)),
        (33, (35, 50, 70)),
        (80, (80, 120, 160)),
        (Decimal("120"), (120, 180, 240)),
        # A tiny last gift still asks for at least 10 €.
        (3, (10, 15, 20)),
    ],
)
def test_donors_are_asked_from_their_last_gift(
    last_gift: Decimal | int, ladder: tuple[int, int, int]
) -> None:
    assert asks.ask_ladder(last_gift) == tuple(Decimal(a) for a in ladder)


@pytest.mark.parametrize("last_gift", [1, 7, 10, 19, 47, 99, 101, 555, 10_000])
def test_ladders_ascend_strictly(last_gift: int) -> None:
    ladder = asks.ask_ladder(last_gift)
    assert len(ladder) == 3
    assert ladder[0] < ladder[1] < ladder[2]
    assert ladder[0] >= min(Decimal(last_gift), Decimal(10))


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100_000), places=2))
def test_every_ladder_ascends_in_round_amounts(last_gift: Decimal) -> None:
    ladder = asks.ask_ladder(last_gift)
    assert ladder[0] < ladder[1] < ladder[2]
    assert all(rung % 5 == 0 for rung in ladder)
    assert ladder[0] >= min(last_gift, Decimal(10))
