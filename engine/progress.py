"""How a long operation says how far it is: phases, each with a total, and advances.

The operations (`import`, `sync`, `simulate`, `demo`, the retention pass) take a `Progress`
and know nothing of terminals; `engine.cli.progress` draws it, and `QUIET` is the default
for every other caller (the API, the scheduler, tests).
"""

from __future__ import annotations

from typing import Final, Protocol


class Progress(Protocol):
    """One bar per phase: `phase` starts the next (ending the previous), `advance` moves it."""

    def phase(self, name: str, total: float) -> None: ...
    def advance(self, amount: float) -> None: ...


class Quiet:
    """Progress nobody watches."""

    def phase(self, name: str, total: float) -> None:
        return None

    def advance(self, amount: float) -> None:
        return None


QUIET: Final[Progress] = Quiet()
