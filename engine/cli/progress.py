"""The progress of long commands (`import`, `sync`, `simulate`, `demo`, `gdpr retention`):
bars on stderr, on a terminal only.

Redirected or piped (a script, cron, a test), stderr keeps only the warnings and errors it
always had, and stdout the command's report: a bar's last state would be noise in a log,
and scripts read both streams. `TTY_COMPATIBLE=1` (or `FORCE_COLOR`) forces the bars, as
rich reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from engine.progress import QUIET, Progress


class Bars:
    """One bar per phase; a phase's bar is full once the next starts, or at the end."""

    def __init__(self, progress: RichProgress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, name: str, total: float) -> None:
        self.finish()
        self.task = self.progress.add_task(name, total=total)

    def advance(self, amount: float) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)


@contextmanager
def bars() -> Iterator[Progress]:
    """Bars on stderr when it is a terminal, else `QUIET`. A command that fails leaves its
    bars where they stopped, above its error."""
    progress = RichProgress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f} %"),
        TimeElapsedColumn(),
    )
    progress.console.stderr = True
    if not progress.console.is_terminal:
        yield QUIET
        return
    with progress:
        shown = Bars(progress)
        yield shown
        shown.finish()
