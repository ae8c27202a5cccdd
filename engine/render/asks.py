"""Donation asks: what a gift really costs after tax, and how much to ask for.

Pure functions of their inputs (amounts are Decimals, in euros), so templates,
the journey engine and the dashboard agree to the cent.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

# French income-tax reduction for gifts to associations of general interest
# (article 200 du CGI). Organisations "d'aide aux personnes en difficulté" get 75 %:
# they pass their own rate.
DEFAULT_TAX_REDUCTION = Decimal("0.66")
# What a first-time donor is offered: amounts that convert well on petition lists.
FIRST_GIFT_LADDER = (Decimal(15), Decimal(30), Decimal(50))
# An additional gift is asked relative to the last one: the same, half again, double.
_MULTIPLIERS = (Decimal(1), Decimal("1.5"), Decimal(2))
# Below this, a ladder built from a tiny last gift would ask for less than a first gift.
_FLOOR = Decimal(10)
_CENT = Decimal("0.01")


def after_tax(amount: Decimal | int, reduction: Decimal = DEFAULT_TAX_REDUCTION) -> Decimal:
    """What the gift costs the donor once the tax reduction is applied: 15 → 5.10."""
    if not Decimal(0) <= reduction <= Decimal(1):
        raise ValueError(f"tax reduction must be between 0 and 1, got {reduction}")
    return (Decimal(amount) * (Decimal(1) - reduction)).quantize(_CENT, rounding=ROUND_HALF_UP)


def round_ask(amount: Decimal) -> Decimal:
    """Round up to an amount people pick: to 5 € under 100 €, to 10 € above."""
    step = Decimal(5) if amount < 100 else Decimal(10)
    return (amount / step).to_integral_value(rounding=ROUND_CEILING) * step


def ask_ladder(last_gift: Decimal | int | None) -> tuple[Decimal, ...]:
    """Three ascending amounts to offer, sized from the supporter's last gift.

    No last gift (or a zero one): the first-gift ladder. Otherwise the last gift,
    one and a half times it and twice it, each rounded up to a round amount and
    never below 10 €, with duplicates pushed up so the rungs stay distinct.
    """
    if last_gift is None or Decimal(last_gift) <= 0:
        return FIRST_GIFT_LADDER
    base = max(Decimal(last_gift), _FLOOR)
    rungs: list[Decimal] = []
    for multiplier in _MULTIPLIERS:
        rung = round_ask(base * multiplier)
        if rungs and rung <= rungs[-1]:
            rung = round_ask(rungs[-1] + 1)
        rungs.append(rung)
    return tuple(rungs)
