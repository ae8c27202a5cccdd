"""APScheduler wiring of the periodic passes (engine/periodic.py).

Several workers and API processes may run the passes, each with its own scheduler. A
process that finds the journey pass taken by another skips the run and tries again shortly
(`Skipped`), until a run of its own gets through, so that what woke it (a signature that
the running pass may have read too early) is never left to the next interval. In an API
process, the passes make way for a burst of requests (engine/make_way.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError

from engine.make_way import MakeWay, never
from engine.periodic import Passes, Skipped
from engine.send.dispatcher import Report, SendingRefused
from engine.store.enrolments import Summary

log = logging.getLogger("mobilise.scheduler")

# A run that found its pass taken by another process tries again this much later.
RETRY_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class MadeWay:
    """A pass put off, or a dispatch pass cut short, while this process answers a burst of
    requests (engine/make_way.py); it runs again a moment later."""

    name: str


@dataclass
class Guarded:
    """A periodic job that outlives its failures: the next run tries again.

    Credentials refused (401/403, SMTP 535) are not retried at the job's pace: the queue is
    kept, an operator is alerted, and the job stays off the provider for a minute, then
    two, four, … up to half an hour, alerting at each refusal, until a run gets through
    (docs/operations.md). Hammering the API with a revoked key helps nobody."""

    name: str
    job: Callable[[datetime], object]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    first_pause: timedelta = timedelta(minutes=1)
    longest_pause: timedelta = timedelta(minutes=30)
    pause: timedelta | None = None
    paused_until: datetime | None = None
    # Set while no run is in progress: a `Waker` waits for it rather than have the
    # scheduler skip a run that falls during another.
    idle: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def __call__(self) -> object:
        """Runs the job; returns what it returned (None when paused or failed)."""
        self.idle.clear()
        try:
            return self._run()
        finally:
            self.idle.set()

    def _run(self) -> object:
        now = self.clock()
        if self.paused_until is not None and now < self.paused_until:
            return None
        try:
            outcome = self.job(now)
        except SendingRefused as exc:
            # Nothing was lost (the batch is queued again); the operator must act.
            self.pause = min(self.pause * 2, self.longest_pause) if self.pause else self.first_pause
            self.paused_until = now + self.pause
            log.critical(
                "ALERT %s stopped: %s; next try at %s",
                self.name,
                exc.message,
                self.paused_until.isoformat(timespec="seconds"),
            )
            return None
        except Exception:
            log.exception("%s pass failed; the next run will try again", self.name)
            return None
        self.pause = self.paused_until = None
        return outcome


class Waker:
    """Brings a job's next run forward to now, so that what just happened (a signature, a
    queued thank-you) is handled in seconds rather than at the next interval.

    Wakes never pile up: while one is pending (not yet applied), it covers whatever comes
    next, and two planned runs are at least `spacing` apart. A job run by `Guarded` that is
    running when woken is woken again as soon as it ends (the scheduler would otherwise skip
    a run that falls during another, and the signer would wait for the interval).

    Each job has one Waker, shared by all that wake it (`Scheduled.wake`): a wake that
    finds a run planned counts on that run, which a second Waker could have moved.

    The change is applied from a short-lived thread of its own, never from the caller's:
    APScheduler's shutdown holds its job-store lock while it waits for running jobs, so a
    job that woke another one inline would wait for that lock forever, and so would the
    shutdown (seen: `mobilise run` never stopping after SIGTERM under load)."""

    def __init__(
        self,
        jobs: Any,
        job_id: str,
        *,
        spacing: timedelta = timedelta(seconds=1),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        longest_wait: timedelta = timedelta(minutes=10),
    ) -> None:
        self.jobs, self.job_id, self.spacing, self.clock = jobs, job_id, spacing, clock
        self.longest_wait = longest_wait
        self.planned: datetime | None = None
        self.pending = False
        self._lock = threading.Lock()

    def __call__(self, after: timedelta = timedelta(0)) -> threading.Thread | None:
        """Plans a run `after` from now (or later, for the spacing); returns the thread
        applying it (None when one is pending or ahead, which covers this wake)."""
        with self._lock:
            now = self.clock()
            if self.pending or (self.planned is not None and self.planned > now):
                return None
            self.pending = True
            at = now + after
            if self.planned is not None:
                at = max(at, self.planned + self.spacing)
            self.planned = at
            applying = threading.Thread(
                target=self._apply, args=(at,), name=f"wake-{self.job_id}", daemon=True
            )
        applying.start()
        return applying

    def _apply(self, at: datetime) -> None:
        try:
            job = self.jobs.get_job(self.job_id)
            idle = getattr(job.func, "idle", None) if job is not None else None
            if isinstance(idle, threading.Event) and not idle.is_set():
                idle.wait(self.longest_wait.total_seconds())
                at = max(at, self.clock())
            with self._lock:
                self.planned = max(at, self.planned or at)
            self.jobs.modify_job(self.job_id, next_run_time=at)
        except (JobLookupError, SchedulerNotRunningError):
            log.debug("no %s job to wake", self.job_id)
        finally:
            with self._lock:
                self.pending = False


@dataclass(frozen=True)
class Scheduled:
    """The APScheduler scheduler running the passes, and the one Waker of each job."""

    jobs: Any
    wake: dict[str, Waker]


def scheduler(passes_: Passes, *, blocking: bool, busy: Callable[[], bool] = never) -> Scheduled:
    """A scheduler running the passes: blocking for `mobilise worker`, else background.

    While `busy` (an API process answering a burst, engine/make_way.py), the journey and
    dispatch passes make way, each for at most `passes_yield_at_most_s` in a row."""
    if blocking:
        from apscheduler.schedulers.blocking import BlockingScheduler

        chosen: Any = BlockingScheduler(timezone=UTC)
    else:
        from apscheduler.schedulers.background import BackgroundScheduler

        chosen = BackgroundScheduler(timezone=UTC)
    settings = passes_.settings
    # One instance of each job at a time in this process, and missed runs coalesced:
    # a pass catches up on everything due anyway, running it twice in a row is waste. A
    # run that starts late (a busy machine) still runs: it may be the one a wake planned.
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    start = datetime.now(UTC)
    wake = {name: Waker(chosen, name) for name in ("journeys", "dispatch")}
    chosen.add_job(
        Guarded("retention", passes_.retention),
        "interval",
        seconds=settings.retention_every_s,
        id="retention",
        next_run_time=start,
        **options,
    )

    way = {
        name: MakeWay(busy, at_most=settings.passes_yield_at_most_s)
        for name in ("journeys", "dispatch")
    }

    def journeys(now: datetime) -> Summary | Skipped | MadeWay:
        if way["journeys"].now():
            wake["journeys"](RETRY_AFTER)
            return MadeWay("journeys")
        outcome = passes_.journeys(now)
        way["journeys"].ran()
        if isinstance(outcome, Skipped):
            # The other process's run may have read the signers before the one who woke
            # this run: try again until a run of ours gets through.
            log.debug("journeys pass running elsewhere; trying again in %s", RETRY_AFTER)
            wake["journeys"](RETRY_AFTER)
        elif outcome.queued:
            wake["dispatch"]()  # a thank-you is due now: send it now, not in ten seconds
        return outcome

    chosen.add_job(
        Guarded("journeys", journeys),
        "interval",
        seconds=settings.journeys_every_s,
        id="journeys",
        next_run_time=start,
        **options,
    )

    def dispatch(now: datetime) -> Report | MadeWay:
        cut_short = False

        def make_way() -> bool:
            nonlocal cut_short
            cut_short = cut_short or way["dispatch"].now()
            return cut_short

        if make_way():
            wake["dispatch"](RETRY_AFTER)
            return MadeWay("dispatch")
        report = passes_.dispatch(now, make_way=make_way)
        if cut_short:
            wake["dispatch"](RETRY_AFTER)  # the rest of the queue, once the burst is over
        else:
            way["dispatch"].ran()
        return report

    # A second later: the first dispatch sends what the first journey pass queued.
    chosen.add_job(
        Guarded("dispatch", dispatch),
        "interval",
        seconds=settings.dispatch_every_s,
        id="dispatch",
        next_run_time=start + timedelta(seconds=1),
        **options,
    )
    return Scheduled(chosen, wake)
