"""What `mobilise run` writes to stderr: one line per request, not the scheduler's chatter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from engine.api import accesslog


@pytest.fixture
def logging_restored() -> Iterator[None]:
    root, scheduler = logging.getLogger(), logging.getLogger("apscheduler")
    levels = root.level, scheduler.level
    yield
    root.setLevel(levels[0])
    scheduler.setLevel(levels[1])


@pytest.mark.usefixtures("logging_restored")
def test_the_server_log_leaves_out_each_job_run_of_the_scheduler() -> None:
    # Given the server's logging at INFO, as `mobilise run` sets it
    logging.getLogger().setLevel(logging.INFO)
    # When the application configures it
    accesslog.configure()
    # Then the access lines show, APScheduler's "job executed" lines do not, its warnings do
    executor = logging.getLogger("apscheduler.executors.default")
    assert logging.getLogger("engine.api.access").isEnabledFor(logging.INFO)
    assert not executor.isEnabledFor(logging.INFO)
    assert executor.isEnabledFor(logging.WARNING)


CLICK = {"type": "http", "method": "GET", "path": "/c/x", "path_params": {"token": "x"}}


def held_lines(busy: list[bool], at_most_s: float = 60.0) -> accesslog.Later:
    ended = iter(range(1_000, 2_000))  # each request ends a second after the one before
    return accesslog.Later(busy=lambda: busy[0], at_most_s=at_most_s, clock=lambda: next(ended))


def test_a_click_line_at_rest_is_written_at_once(caplog: pytest.LogCaptureFixture) -> None:
    lines = held_lines([False])
    with caplog.at_level(logging.INFO, logger="engine.api.access"):
        lines.line(CLICK, 302, 1.5)
    assert [r.getMessage() for r in caplog.records] == [
        "method=GET path=/c/x status=302 duration_ms=1.5"
    ]


def test_click_lines_under_load_wait_for_the_batch_to_go_to_the_database_and_keep_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the click writer busy (a batch being written, or clicks coming back)
    busy = [True]
    lines = held_lines(busy)

    async def scenario() -> tuple[int, int, list[tuple[str, float]]]:
        with caplog.at_level(logging.INFO, logger="engine.api.access"):
            # When two clicks are answered
            lines.line(CLICK, 302, 1.0)
            lines.line(CLICK, 404, 2.0)
            held = len(caplog.records)
            # and the next batch goes to the database
            lines.flush()
            flushed = len(caplog.records)
            # and once at rest, a third
            busy[0] = False
            lines.line(CLICK, 302, 3.0)
            return held, flushed, [(r.getMessage()[-4:], r.created) for r in caplog.records]

    held, flushed, written = asyncio.run(scenario())

    # Then their lines wait for it, then come in order, each dated when its request ended,
    # and the third at once
    assert (held, flushed) == (0, 2)
    assert written == [("=1.0", 1000), ("=2.0", 1001), ("=3.0", 1002)]


def test_a_held_click_line_is_written_within_its_delay_without_a_next_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a busy writer whose clients stop (no next batch), lines held at most 0 s
    lines = held_lines([True], at_most_s=0)

    async def scenario() -> tuple[int, int]:
        with caplog.at_level(logging.INFO, logger="engine.api.access"):
            lines.line(CLICK, 302, 1.0)
            before = len(caplog.records)
            await asyncio.sleep(0)  # one turn of the loop: the delay is due
            await asyncio.sleep(0)
            return before, len(caplog.records)

    # Then the line is written once its delay has passed
    assert asyncio.run(scenario()) == (0, 1)
