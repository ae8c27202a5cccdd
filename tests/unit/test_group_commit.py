"""Group commit's promise to a request answered "try again": it is not written after all."""

from __future__ import annotations

import asyncio
import threading

from engine.store.group_commit import GroupCommit


class Expired(Exception):
    pass


def test_a_request_answered_expired_while_it_waited_is_not_written_later() -> None:
    # Given a writer stuck on its first batch, and a second request waiting behind it
    written: list[list[str]] = []
    started, stuck = threading.Event(), threading.Event()

    def write(items: list[str]) -> list[str]:
        started.set()
        stuck.wait(timeout=30)
        written.append(items)
        return items

    async def scenario() -> list[BaseException | str]:
        commit: GroupCommit[str, str] = GroupCommit(write, expired=Expired, wait_s=0, timeout_s=0.2)
        commit.start()
        try:
            first = asyncio.ensure_future(commit.submit("written"))
            await asyncio.to_thread(started.wait, 30)  # the first batch is being written
            second = asyncio.ensure_future(commit.submit("told to retry"))
            # When both time out (the sweep answers them), then the database comes back
            answers = await asyncio.gather(first, second, return_exceptions=True)
            stuck.set()
            await commit.submit("next")
            return list(answers)
        finally:
            stuck.set()
            await commit.stop()

    answers = asyncio.run(scenario())

    # Then both were told to try again, and the one that never reached the database is
    # not written behind its client's back (its retry would count twice)
    assert all(isinstance(a, Expired) for a in answers)
    assert written == [["written"], ["next"]]
