"""Group commit: requests that arrive together share one transaction.

An API process runs one consumer per kind of write (signatures, clicks). While it writes a
batch in a worker thread, new requests queue; the next batch takes them all. Under load,
batches grow and commits per request fall; at rest a request waits at most `wait_s`
before its batch starts. With `until_as_many`, a batch starts as soon as as many requests
wait as the last batch had (at rest, one: at once), after `wait_s` at most: with clients
that each send their next request once answered, the rest of a fixed wait was idle time
(the click route, bench/README.md). Each request is answered once its batch has
committed, so an answer means the write is stored: a crash loses nothing acknowledged.

`write` takes a batch and returns one result per item, an exception standing for that
item's own refusal. When the whole batch fails, its items are written again one by one, so
that one bad request does not fail its neighbours; each that still fails gets its error.

No request waits forever: one sweep every `timeout_s / 4` (at most a second) answers
those waiting for longer than `timeout_s` with `expired()`, a stuck database's error the
client may retry. One answered so before its batch started is not written; one whose batch
was being written may have been stored (its outcome is not known when it is answered).
One timer for all, not one a request: on a click redirect, a timer set and cancelled per
request showed among the event loop's costs (bench/README.md).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    done: asyncio.Future[R]
    deadline: float  # the event loop's time past which it is answered `expired()`


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Sequence[R | Exception]],
        *,
        expired: Callable[[], Exception],
        max_batch: int = 256,
        wait_s: float = 0.002,
        timeout_s: float = 30.0,
        after: Callable[[Sequence[R | Exception]], object] | None = None,
        until_as_many: bool = False,
    ) -> None:
        self._write = write
        self._expired = expired  # the error of a request not answered within `timeout_s`
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._timeout_s = timeout_s
        self._after = after  # called in the event loop with a batch's results, before answers
        self._waiting: deque[_Pending[T, R]] = deque()  # in arrival order
        self._arrived = asyncio.Event()
        # With `until_as_many`, the size of the last batch: those it answered are expected
        # back (their clients' next requests); once as many wait, the batch starts.
        self._until_as_many = until_as_many
        self._expected = 1 if until_as_many else sys.maxsize
        self._gathered = asyncio.Event()
        self._writing: list[_Pending[T, R]] = []  # the batch being written
        self._last = 0  # the size of the last batch
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._consume())
        self._sweeper = loop.call_later(self._sweep_s, self._sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def submit(self, item: T) -> R:
        """The item's result once its batch is committed; raises the item's error."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        waiting = self._waiting
        waiting.append(_Pending(item, done, loop.time() + self._timeout_s))
        self._arrived.set()
        if len(waiting) >= self._expected:
            self._gathered.set()
        return await done

    @property
    def busy(self) -> bool:
        """Whether a batch is being written, requests wait for the next one, or the last
        one held more than one (its clients may be coming back)."""
        return bool(self._writing or self._waiting) or self._last > 1

    @property
    def _sweep_s(self) -> float:
        return min(1.0, self._timeout_s / 4)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for pending in chain(self._writing, self._waiting):
            if pending.deadline > now:
                break  # arrival order: the others came later
            if not pending.done.done():
                pending.done.set_exception(self._expired())
        self._sweeper = loop.call_later(self._sweep_s, self._sweep)

    async def _consume(self) -> None:
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            # Let concurrent requests join the batch (at least the answers of the last one go
            # out and the requests they let in are read).
            if not self._until_as_many:
                await asyncio.sleep(self._wait_s)
            elif len(self._waiting) < self._expected:  # the wait's remainder would be idle
                self._gathered.clear()
                try:
                    await asyncio.wait_for(self._gathered.wait(), self._wait_s)
                except TimeoutError:
                    pass
            waiting = self._waiting
            batch: list[_Pending[T, R]] = []
            while waiting and len(batch) < self._max_batch:
                pending = waiting.popleft()
                # Answered `expired()` while it waited: its client was told to try again,
                # so it is not written (a retried click would count twice).
                if not pending.done.done():
                    batch.append(pending)
            if not batch:
                continue
            self._writing = batch
            self._last = len(batch)
            if self._until_as_many:
                self._expected = len(batch)
            items = [pending.item for pending in batch]
            results: Sequence[R | Exception]
            try:
                results = await anyio.to_thread.run_sync(self._write_or_isolate, items)
            except Exception as exc:  # the consumer must outlive any failure
                results = [exc] * len(batch)
            if self._after is not None:
                self._after(results)
            self._writing = []
            for pending, result in zip(batch, results, strict=True):
                if pending.done.done():
                    continue
                if isinstance(result, Exception):
                    pending.done.set_exception(result)
                else:
                    pending.done.set_result(result)

    def _write_or_isolate(self, items: list[T]) -> Sequence[R | Exception]:
        try:
            return self._write(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        results: list[R | Exception] = []
        for item in items:
            try:
                results += self._write([item])
            except Exception as exc:  # reported to that request alone
                results.append(exc)
        return results
