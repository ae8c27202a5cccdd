"""Passes that make way for requests (engine/make_way.py).

Given an API process answering a burst of signatures, its journey and dispatch passes are
put off, for at most a set time in a row, and run again as soon as the burst is over."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.make_way import MakeWay, Traffic, busy_above, never
from engine.periodic import Passes, Skipped
from engine.progress import QUIET, Progress
from engine.rules.conditions import Condition
from engine.scheduler import scheduler
from engine.send.dispatcher import Report
from engine.store.retention import RetentionReport
from engine.store.summary import Summary


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_traffic_is_the_rate_over_the_last_whole_second() -> None:
    clock = Clock()
    traffic = Traffic(clock)

    # when 300 requests are answered within a second
    for _ in range(300):
        clock.now += 1 / 300
        traffic.count()
    clock.now += 0.01
    traffic.count()

    # then the rate is about 300 a second, and busy above 200, not above 400
    assert 290 < traffic.per_second() < 310
    assert busy_above(traffic, 200)()
    assert not busy_above(traffic, 400)()


def test_traffic_falls_to_nothing_once_a_second_goes_by_unanswered() -> None:
    clock = Clock()
    traffic = Traffic(clock)
    for _ in range(1000):
        clock.now += 0.001
        traffic.count()
    clock.now += 0.01
    traffic.count()
    assert traffic.per_second() > 500

    # when no request comes for two seconds
    clock.now += 2.0

    # then the process is quiet again: the passes need no new request to run
    assert traffic.per_second() == 0.0


def test_zero_means_the_passes_never_make_way() -> None:
    clock = Clock()
    traffic = Traffic(clock)
    for _ in range(10_000):
        clock.now += 0.0001
        traffic.count()
    assert not busy_above(traffic, 0)()


def test_a_pass_is_put_off_while_busy_and_runs_once_quiet() -> None:
    clock = Clock()
    busy = [True]
    way = MakeWay(lambda: busy[0], at_most=30.0, clock=clock)

    # given a burst: the pass is put off
    assert way.now()
    clock.now += 10
    assert way.now()

    # when the burst is over, then it runs
    busy[0] = False
    assert not way.now()


def test_a_pass_is_never_put_off_longer_than_at_most_in_a_row() -> None:
    clock = Clock()
    way = MakeWay(lambda: True, at_most=30.0, clock=clock)

    # given a burst that lasts: put off for 29 s
    assert way.now()
    clock.now += 29
    assert way.now()

    # when 30 s have gone by since it was first put off, then it runs, burst or not
    clock.now += 1
    assert not way.now()

    # and once it has run, the count starts again
    way.ran()
    assert way.now()
    clock.now += 29.9
    assert way.now()


class Burst:
    """An API process's traffic, switched by the test."""

    def __init__(self) -> None:
        self.on = threading.Event()

    def __call__(self) -> bool:
        return self.on.is_set()


class RecordingPasses(Passes):
    """Passes that record their runs; dispatch sends `batches` batches, asking between
    each whether to make way, as the real dispatcher asks `stopping`."""

    def __init__(self, burst: Burst, batches: int) -> None:
        settings = Settings(journeys_every_s=3600, dispatch_every_s=3600, retention_every_s=3600)
        super().__init__(settings, cast(sessionmaker[Session], None))
        self.burst, self.queue = burst, batches
        self.journey_runs: list[datetime] = []
        self.sent_in_burst = 0
        self.all_sent = threading.Event()
        self.journeys_ran = threading.Event()

    def retention(self, now: datetime, *, progress: Progress = QUIET) -> RetentionReport:
        return RetentionReport()

    def journeys(
        self, now: datetime, *, segments: dict[str, Condition] | None = None
    ) -> Summary | Skipped:
        self.journey_runs.append(now)
        self.journeys_ran.set()
        return Summary()

    def dispatch(self, now: datetime, *, make_way: Callable[[], bool] = never) -> Report:
        report = Report()
        while self.queue and not make_way():
            self.queue -= 1
            self.sent_in_burst += self.burst()
            if self.queue == 5:
                self.burst.on.set()  # a burst begins while the pass sends
        if not self.queue:
            self.all_sent.set()
        return report


def test_the_passes_make_way_during_a_burst_and_catch_up_after_it() -> None:
    # given a process whose dispatch has ten batches to send
    burst = Burst()
    passes = RecordingPasses(burst, batches=10)
    scheduled = scheduler(passes, blocking=False, busy=burst)
    scheduled.jobs.start()
    try:
        # when a burst of requests begins halfway through
        assert burst.on.wait(timeout=10)

        # then the dispatch stops after the batch in hand, and the journey pass woken by
        # a signature is put off too
        passes.journeys_ran.clear()
        scheduled.wake["journeys"]()
        assert not passes.all_sent.wait(timeout=1.5)
        assert passes.queue == 5
        assert passes.sent_in_burst == 0
        assert not passes.journeys_ran.is_set()

        # and once the burst is over, both run again within seconds, not at the interval
        burst.on.clear()
        assert passes.all_sent.wait(timeout=10), "the rest waited for the next interval"
        assert passes.journeys_ran.wait(timeout=10), "the journey pass waited for the interval"
    finally:
        scheduled.jobs.shutdown()
