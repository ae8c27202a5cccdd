"""A/B verdicts, pure: a two-proportion z-test, how many more sends a test needs, and a
sentence a fundraiser can act on.

The test is the usual pooled two-proportion z-test, two-sided; the sample size is the one
that detects the difference seen so far at that significance with 80 % power (Fleiss,
without continuity correction). No SciPy: the normal distribution is `math.erf`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.80
# Quantiles of the standard normal distribution for ALPHA (two-sided) and POWER.
Z_ALPHA = 1.959963984540054
Z_POWER = 0.8416212335729143


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


def percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < ALPHA else f"p = {p:.2f}"


def compare(control: Arm, challenger: Arm, metric: str) -> Verdict:
    """Whether `challenger` does better than `control` on `metric`, and a sentence."""
    name = challenger.name
    if not control.sent or not challenger.sent:
        waiting = control.name if not control.sent else name
        return Verdict(
            metric, control, challenger, 0.0, None, None, False, None,
            f"{waiting} has sent no email yet: nothing to compare.",
        )  # fmt: skip
    points = (challenger.rate - control.rate) * 100
    z, p = z_test(control, challenger)
    significant = p < ALPHA
    needed = sends_needed(control.rate, challenger.rate)
    more = None if needed is None else max(0, needed - min(control.sent, challenger.sent))
    seen = f"({percent(challenger.rate)} against {percent(control.rate)} for {control.name})"
    if needed is None:
        sentence = (
            f"{name} and {control.name} have the same {metric} so far "
            f"({percent(control.rate)}): no difference to test yet."
        )
    else:
        moves = "raises" if points > 0 else "lowers"
        head = f"{name} {moves} the {metric} by {abs(points):.1f} points {seen}"
        if significant:
            sentence = f"{head}: significant ({p_text(p)})."
        elif more:
            sentence = (
                f"{head}, not significant yet ({p_text(p)}): "
                f"about {about(more)} more sends per variant needed."
            )
        else:
            sentence = f"{head}, not significant ({p_text(p)}): the difference may be chance."
    return Verdict(metric, control, challenger, points, z, p, significant, more, sentence)
