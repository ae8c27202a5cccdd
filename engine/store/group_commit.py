"""Group commit: requests that arrive together share one transaction.

An API process runs one consumer per kind of write (signatures, clicks). While it writes a
batch in a worker thread, new requests queue; the next batch takes them all. Under load,
batches grow and commits per request fall; at rest a request waits at most `wait_s`
before its batch starts. Each request is answered once its batch has committed, so an
answer means the write is stored: a crash loses nothing acknowledged.

`write` takes a batch and returns one result per item, an exception standing for that
item's own refusal. When the whole batch fails, its items are written again one by one, so
that one bad request does not fail its neighbours; each that still fails gets its error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    done: asyncio.Future[R]


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
    ) -> None:
        self._write = write
        self._expired = expired  # the error of a request not answered within `timeout_s`
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._timeout_s = timeout_s
        self._after = after  # called in the event loop with a batch's results, before answers
        self._queue: asyncio.Queue[_Pending[T, R]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._consume())

    async def stop(self) -> None:
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
        self._queue.put_nowait(_Pending(item, done))
        # Never wait forever: a stuck database answers an error the client may retry.
        # (A timer on the future itself: `wait_for` costs a task and two futures a call.)
        timer = loop.call_later(self._timeout_s, self._expire, done)
        try:
            return await done
        finally:
            timer.cancel()

    def _expire(self, done: asyncio.Future[R]) -> None:
        if not done.done():
            done.set_exception(self._expired())

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # Let concurrent requests join the batch (at least the answers of the last one go
            # out and the requests they let in are read).
            await asyncio.sleep(self._wait_s)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items = [pending.item for pending in batch]
            results: Sequence[R | Exception]
            try:
                results = await anyio.to_thread.run_sync(self._write_or_isolate, items)
            except Exception as exc:  # the consumer must outlive any failure
                results = [exc] * len(batch)
            if self._after is not None:
                self._after(results)
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
