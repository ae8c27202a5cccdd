"""The cyclic garbage collector's pace while Mobilise does batch work.

A batch pass allocates millions of short-lived objects (claimed rows, contexts, renders,
requests), hardly any of them in a reference cycle: reference counting frees them. At
CPython's default pace (a young collection every 700 net allocations, an older one every
10 of those) the collector walks the live batch again and again: 14 % of a dispatch's CPU
(4.9 s of 34.6 s for 140,000 thank-yous, bench/dispatch_bench.py). Two paces:

- `paused`: no cyclic collection at all, for work that makes no cycles (an import's rows);
- `batch_pace`: young collections every 50,000 allocations, older ones rarer still, for
  work that makes a few (the ORM's sessions): the collector still runs, a hundred times
  less often (dispatch: 0.3 s of collection instead of 4.9 s).

Both are process-wide (the collector is) and nest: several passes at once (the
scheduler's threads) keep the pace until the last one ends, which puts back what was
there before the first.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_PACE = (50_000, 20, 100)


class _Pace:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[tuple[int, int, int], bool] = (gc.get_threshold(), gc.isenabled())

    @contextmanager
    def held(self, *, collect: bool) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = (gc.get_threshold(), gc.isenabled())
            self._depth += 1
            # A pause asked inside a batch pace (or beside one) wins until the last exit.
            if collect and gc.isenabled():
                gc.set_threshold(*BATCH_PACE)
            else:
                gc.disable()
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    threshold, enabled = self._saved
                    gc.set_threshold(*threshold)
                    if enabled:
                        gc.enable()


_PACE = _Pace()


@contextmanager
def batch_pace() -> Iterator[None]:
    """Collect cycles a hundred times less often until the block ends."""
    with _PACE.held(collect=True):
        yield


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection until the block ends: for work that makes no cycles."""
    with _PACE.held(collect=False):
        yield
