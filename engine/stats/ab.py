"""A/B verdicts, pure: a two-proportion test, how many more sends a test needs, and a
sentence a fundraiser can act on.

The test is the usual pooled two-proportion z-test, two-sided, while each arm expects at
least five successes and five failures; below that (gifts are few: 0 against 3 gifts of
3 sends each would be "p = 0.014"), Fisher's exact test, two-sided. The sample size is
the one that detects the difference seen so far at that significance with 80 % power
(Fleiss, without continuity correction). No SciPy: the normal distribution is
`math.erf`, the hypergeometric one `math.lgamma`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.80
# Quantiles of the standard normal distribution for ALPHA (two-sided) and POWER.
Z_ALPHA = 1.959963984540054
Z_POWER = 0.8416212335729143
# The z-test's normal approximation holds while every cell expects at least this many.
EXPECTED_AT_LEAST = 5.0


@dataclass(frozen=True)
class Arm:
    """One variant: how many emails it sent and how many of them succeeded."""

    name: str
    sent: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Verdict:
    metric: str  # what succeeded, in words: "gift rate", "click rate"
    control: Arm
    challenger: Arm
    points: float  # challenger's rate minus control's, in percentage points
    z: float | None
    p_value: float | None
    significant: bool
    more_sends_per_variant: int | None  # None: cannot tell (no difference seen yet)
    sentence: str


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def z_test(control: Arm, challenger: Arm) -> tuple[float, float]:
    """(z, two-sided p-value) of the pooled two-proportion z-test."""
    pooled = (control.successes + challenger.successes) / (control.sent + challenger.sent)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / control.sent + 1 / challenger.sent))
    if spread == 0:
        return 0.0, 1.0
    z = (challenger.rate - control.rate) / spread
    # erfc keeps precision in the far tail, where 1 - cdf would round to 0.
    return z, math.erfc(abs(z) / math.sqrt(2.0))


def fisher_exact(control: Arm, challenger: Arm) -> float:
    """Two-sided p-value of Fisher's exact test: the probability, with the margins fixed,
    of a table at most as likely as the one seen. Over the smallest margin's values."""
    n1, n2 = control.sent, challenger.sent
    k = control.successes + challenger.successes

    def log_p(x: int) -> float:  # x successes in control
        return _log_comb(n1, x) + _log_comb(n2, k - x) - _log_comb(n1 + n2, k)

    seen = log_p(control.successes)
    tables = range(max(0, k - n2), min(k, n1) + 1)
    # Tables as likely as the one seen, up to rounding, count as at most as likely.
    p = sum(math.exp(lp) for lp in map(log_p, tables) if lp <= seen + 1e-7)
    return min(1.0, p)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def p_value(control: Arm, challenger: Arm) -> tuple[float | None, float]:
    """(z or None, two-sided p): the z-test, or Fisher's exact test when a cell of the
    table expects fewer than EXPECTED_AT_LEAST."""
    n = control.sent + challenger.sent
    successes = control.successes + challenger.successes
    expected = min(
        arm.sent * total / n
        for arm in (control, challenger)
        for total in (successes, n - successes)
    )
    if expected < EXPECTED_AT_LEAST:
        return None, fisher_exact(control, challenger)
    return z_test(control, challenger)


def sends_needed(p1: float, p2: float) -> int | None:
    """Emails per variant to detect a move from p1 to p2 (ALPHA two-sided, POWER)."""
    if p1 == p2:
        return None
    mean = (p1 + p2) / 2
    spread = Z_ALPHA * math.sqrt(2 * mean * (1 - mean)) + Z_POWER * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil(spread**2 / (p1 - p2) ** 2)


def about(n: int) -> str:
    """A count rounded to two significant figures, written with thousands separators."""
    if n < 100:
        return str(n)
    digits = len(str(n)) - 2
    return f"{round(n, -digits):,}"


def percent(rate: float, decimals: int = 1) -> str:
    return f"{rate * 100:.{decimals}f}%"


def p_text(p: float) -> str:
    """`p = 0.13`, `p = 0.012`, `p < 0.001`: never rounded onto ALPHA's side it is not on
    (0.0539 is `p = 0.054`, not `p = 0.05` beside "not significant")."""
    if p < 0.001:
        return "p < 0.001"
    decimals = 3 if p < ALPHA else 2
    while round(p, decimals) == ALPHA or (round(p, decimals) < ALPHA) != (p < ALPHA):
        decimals += 1
    return f"p = {p:.{decimals}f}"


def compare(control: Arm, challenger: Arm, metric: str) -> Verdict:
    """Whether `challenger` does better than `control` on `metric`, and a sentence."""
    name = challenger.name
    if not control.sent or not challenger.sent:
        waiting = control.name if not control.sent else name
        return Verdict(
            metric, control, challenger, 0.0, None, None, False, None,
            f"{waiting} has sent no email yet: nothing to compare.",
        )  # fmt: skip
    # Successes counted on emails not settled as sent yet can outnumber the sent: counted
    # as at most one per email until they are.
    control, challenger = (_settled(arm) for arm in (control, challenger))
    points = (challenger.rate - control.rate) * 100
    z, p = p_value(control, challenger)
    significant = p < ALPHA
    needed = sends_needed(control.rate, challenger.rate)
    more = None if needed is None else max(0, needed - min(control.sent, challenger.sent))
    # Two decimals for a gap under a tenth of a point: 1.04% against 1.00%, not 1.0% twice.
    decimals = 1 if abs(points) >= 0.1 else 2
    rates = f"{percent(challenger.rate, decimals)} against {percent(control.rate, decimals)}"
    seen = f"({rates} for {control.name})"
    if needed is None:
        sentence = (
            f"{name} and {control.name} have the same {metric} so far "
            f"({percent(control.rate)}): no difference to test yet."
        )
    else:
        moves = "raises" if points > 0 else "lowers"
        head = f"{name} {moves} the {metric} by {abs(points):.{decimals}f} points {seen}"
        if significant:
            sentence = f"{head}: significant ({p_text(p)})."
        elif more:
            sentence = (
                f"{head}, not significant yet ({p_text(p)}): "
                f"about {about(more)} more {'send' if more == 1 else 'sends'} per variant"
                " needed."
            )
        else:
            sentence = f"{head}, not significant ({p_text(p)}): the difference may be chance."
    return Verdict(metric, control, challenger, points, z, p, significant, more, sentence)


def _settled(arm: Arm) -> Arm:
    return Arm(arm.name, arm.sent, min(max(arm.successes, 0), arm.sent))
