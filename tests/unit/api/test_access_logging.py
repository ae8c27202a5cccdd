"""What `mobilise run` writes to stderr: one line per request, not the scheduler's chatter."""

from __future__ import annotations

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
