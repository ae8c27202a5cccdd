"""The scheduler's wrappers around the periodic passes.

A periodic job whose provider refuses the credentials backs off instead of hammering it.

Given a dispatch job that the provider answers 401, when the scheduler runs it every ten
seconds, then it calls the provider again only after one minute, two, four, … (never more
than half an hour), alerting at each refusal; once a run gets through, the normal pace
comes back. Any other failure is logged and retried at the next run.

A wake brings a job's next run forward to now, and wakes never pile up.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED

from engine.scheduler import Guarded, Waker
from engine.send.dispatcher import SendingRefused

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


class Provider:
    """What the job reaches: refuses the key until it is replaced."""

    def __init__(self) -> None:
        self.key_ok = False
        self.calls: list[datetime] = []

    def dispatch(self, now: datetime) -> None:
        self.calls.append(now)
        if not self.key_ok:
            raise SendingRefused("SendGrid answered 401", hint="check the API key")


def every_ten_seconds(job: Guarded, clock: list[datetime], until: timedelta) -> None:
    while clock[0] < T0 + until:
        job()
        clock[0] += timedelta(seconds=10)


def test_refused_credentials_back_off_and_alert_at_each_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, clock = Provider(), [T0]
    job = Guarded("dispatch", provider.dispatch, clock=lambda: clock[0])

    with caplog.at_level(logging.CRITICAL, logger="mobilise.scheduler"):
        every_ten_seconds(job, clock, until=timedelta(minutes=8))

    assert [round((c - T0).total_seconds() / 60) for c in provider.calls] == [0, 1, 3, 7]
    alerts = [r.getMessage() for r in caplog.records]
    assert len(alerts) == 4
    assert alerts[0].startswith("ALERT dispatch stopped: SendGrid answered 401")
    assert "next try at 2026-05-13T09:31:00+00:00" in alerts[0]


def test_the_pause_never_exceeds_half_an_hour_and_ends_once_a_run_gets_through() -> None:
    provider, clock = Provider(), [T0]
    job = Guarded("dispatch", provider.dispatch, clock=lambda: clock[0])
    every_ten_seconds(job, clock, until=timedelta(hours=3))
    gaps = [b - a for a, b in zip(provider.calls, provider.calls[1:], strict=False)]
    assert max(gaps) == timedelta(minutes=30)

    provider.key_ok = True
    clock[0] = job.paused_until or clock[0]
    job()
    job()
    assert provider.calls[-2:] == [clock[0], clock[0]]
    assert job.paused_until is None


def test_other_failures_are_retried_at_the_next_run(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[datetime] = []

    def flaky(now: datetime) -> None:
        calls.append(now)
        raise OSError("database restarting")

    clock = [T0]
    job = Guarded("journeys", flaky, clock=lambda: clock[0])
    every_ten_seconds(job, clock, until=timedelta(seconds=30))

    assert len(calls) == 3
    assert "journeys pass failed; the next run will try again" in caplog.text


def test_a_wake_brings_the_next_run_forward_and_wakes_never_pile_up() -> None:
    jobs = BackgroundScheduler(timezone=UTC)
    jobs.add_job(print, "interval", hours=1, id="journeys", next_run_time=T0 + timedelta(hours=1))
    clock = [T0 + timedelta(seconds=5)]
    wake = Waker(jobs, "journeys", spacing=timedelta(seconds=1), clock=lambda: clock[0])

    def next_run() -> datetime:
        return jobs.get_job("journeys").next_run_time  # type: ignore[no-any-return]

    def woken() -> None:
        applying = wake()
        if applying is not None:
            applying.join()

    woken()
    assert next_run() == T0 + timedelta(seconds=5)
    # A signature just after the run started needs another run: a second later, not sooner.
    clock[0] += timedelta(milliseconds=200)
    woken()
    assert next_run() == T0 + timedelta(seconds=6)
    # Until then, that planned run covers every other signature.
    clock[0] += timedelta(milliseconds=300)
    woken()
    assert next_run() == T0 + timedelta(seconds=6)
    # Much later, a wake is for now again.
    clock[0] = T0 + timedelta(minutes=5)
    woken()
    assert next_run() == T0 + timedelta(minutes=5)


def test_a_wake_for_a_job_that_is_gone_does_nothing() -> None:
    applying = Waker(BackgroundScheduler(timezone=UTC), "journeys")()
    assert applying is not None
    applying.join()


def test_a_job_that_wakes_another_does_not_hold_up_the_shutdown() -> None:
    # given a running job that wakes another once the scheduler is shutting down
    jobs = BackgroundScheduler(timezone=UTC)
    wake_dispatch = Waker(jobs, "dispatch")
    running = threading.Event()

    def journeys() -> None:
        running.set()
        while jobs.state != STATE_STOPPED:  # shutdown has begun: it now holds its locks
            threading.Event().wait(0.01)
        wake_dispatch()

    jobs.add_job(journeys, "interval", hours=1, id="journeys", next_run_time=datetime.now(UTC))
    jobs.add_job(print, "interval", hours=1, id="dispatch")
    jobs.start()
    assert running.wait(timeout=10)

    # when the process shuts the scheduler down (SIGTERM), waiting for the running job
    stopping = threading.Thread(target=jobs.shutdown, daemon=True)
    stopping.start()
    stopping.join(timeout=10)

    # then the shutdown completes
    assert not stopping.is_alive(), "the shutdown and the job wait for each other"


def test_a_job_woken_while_it_runs_runs_again_when_it_ends() -> None:
    # given a journey pass that is running (a signature arrived after it read the signers)
    jobs = BackgroundScheduler(timezone=UTC)
    runs: list[datetime] = []
    running, release, again = threading.Event(), threading.Event(), threading.Event()

    def journeys(now: datetime) -> None:
        runs.append(now)
        if len(runs) == 1:
            running.set()
            release.wait(timeout=10)
        else:
            again.set()

    jobs.add_job(
        Guarded("journeys", journeys),
        "interval",
        hours=1,
        id="journeys",
        next_run_time=datetime.now(UTC),
    )
    jobs.start()
    try:
        assert running.wait(timeout=10)

        # when the signature wakes it, and the run in progress then ends
        applying = Waker(jobs, "journeys")()
        assert applying is not None
        release.set()
        applying.join(timeout=10)

        # then the pass runs once more at once, rather than in an hour
        assert again.wait(timeout=10), "the wake was skipped while the pass ran"
    finally:
        jobs.shutdown()
    assert len(runs) == 2


def test_a_run_that_found_its_pass_taken_tries_again_a_moment_later() -> None:
    # given a journey pass that another process is running: this process's run skipped
    jobs = BackgroundScheduler(timezone=UTC)
    jobs.add_job(print, "interval", hours=1, id="journeys", next_run_time=T0 + timedelta(hours=1))
    clock = [T0]
    wake = Waker(jobs, "journeys", clock=lambda: clock[0])

    # when the skipped run asks to try again a second later
    applying = wake(timedelta(seconds=1))
    assert applying is not None
    applying.join()

    # then its next run is then, not at the interval; and a signature meanwhile counts on it
    assert jobs.get_job("journeys").next_run_time == T0 + timedelta(seconds=1)
    clock[0] += timedelta(milliseconds=500)
    assert wake() is None
    assert jobs.get_job("journeys").next_run_time == T0 + timedelta(seconds=1)
