"""Passes that make way for requests.

An API process that also runs the periodic passes (`mobilise run`) shares its interpreter
and the machine's cores between them and the people signing. When a petition is on the
evening news, signatures arrive by the thousand a second and every one of them is worth
more than sending a thank-you a few seconds sooner. So, while the process answers more
than `above` hot requests a second (signatures, clicks), its journey and dispatch passes
are put off, and a dispatch pass already running stops after the batch in hand; they catch
up as soon as the burst is over. They are never put off for more than `at_most` in a row,
so a burst that lasts still sees its thank-yous go out (docs/operations.md).

`mobilise worker` processes answer no requests and never make way: running passes in
workers is how a busy organisation keeps both fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class Traffic:
    """Hot requests answered by this process, counted over windows of `window` seconds
    (event-loop thread only; the passes' threads only read the last figure). Half-second
    windows put the thank-yous of a 15 s burst up to 100 s after it in 3 runs of 6: one
    second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window: float = 1.0) -> None:
        self._clock = clock
        self._window = window
        self._since = clock()
        self._counted = 0
        self._rate = 0.0

    def count(self, requests: int = 1) -> None:
        now = self._clock()
        elapsed = now - self._since
        if elapsed >= self._window:
            self._rate = self._counted / elapsed
            self._since, self._counted = now, 0
        self._counted += requests

    def per_second(self) -> float:
        """The rate over the last whole window; 0 once two windows have gone by
        unanswered."""
        return self._rate if self._clock() - self._since < 2 * self._window else 0.0


@dataclass
class MakeWay:
    """Whether a pass should be put off now: while `busy`, for at most `at_most` seconds
    since the first time it was put off. `ran` starts the count again."""

    busy: Callable[[], bool]
    at_most: float = 30.0
    clock: Callable[[], float] = time.monotonic
    since: float | None = field(default=None)

    def now(self) -> bool:
        if not self.busy():
            return False
        now = self.clock()
        if self.since is None:
            self.since = now
        return now - self.since < self.at_most

    def ran(self) -> None:
        self.since = None


def busy_above(traffic: Traffic, above: float) -> Callable[[], bool]:
    """`busy` for a process answering more than `above` requests a second (0: never)."""
    if above <= 0:
        return never
    return lambda: traffic.per_second() > above


def never() -> bool:
    return False
