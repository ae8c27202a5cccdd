"""APScheduler wiring of the periodic passes (the passes themselves take `now`).

`Passes` holds the plain functions: the journey pass (enrol, advance; milestones are
marked as signatures arrive and `wait_until: milestone` is read by the advance, so the
milestone check is part of it), the dispatch pass and the retention pass (supporters past
the retention period anonymised, docs/privacy.md). `mobilise tick --now` calls them
once; the scheduler calls them on a timer with the wall clock.

Several workers and API processes may run these, each with its own scheduler. The journey
pass is run by one process at a time (on PostgreSQL, an advisory lock per pass held for the
whole pass, engine/store/locks.py): two processes running it at once would do the same
work twice and wait on each other's rows. A process that finds it taken skips the run and
tries again shortly (`Skipped`), until a run of its own gets through, so that what woke it
(a signature that the running pass may have read too early) is never left to the next
interval. Dispatch runs in every process at once and shares the work: claims take rows
with `FOR UPDATE SKIP LOCKED` (engine/store/claims.py), so several workers send a large
batch together and never send one step twice (docs/operations.md). The outbox key
(enrolment, step) is UNIQUE and the advance moves rows off the step it read, so even
passes run outside the scheduler (`mobilise tick`) beside it never send twice.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from sqlalchemy.orm import Session, sessionmaker

from engine import declarations
from engine.config import Settings
from engine.errors import Invalid
from engine.make_way import MakeWay, never
from engine.progress import QUIET, Progress
from engine.render.library import TemplateLibrary
from engine.rules.conditions import Condition
from engine.rules.rights import Retention
from engine.send import configured_transport
from engine.send.compose import Envelope
from engine.send.dispatcher import Policy, Report, SendingRefused, dispatch
from engine.send.identity import Identity, for_sending, templates_dir
from engine.send.retries import RetryPolicy
from engine.send.transport import Transport
from engine.store import locks, passes, retention, shards
from engine.store.enrolments import BATCH, Summary
from engine.store.shards import Shard

log = logging.getLogger("mobilise.scheduler")


def journeys_pass(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    segments: dict[str, Condition],
    connections: int,
    batch: int = BATCH,
) -> Summary:
    """The journey pass at `now`: enrol, then advance.

    On PostgreSQL the advance runs on `connections` transactions at once, each over one
    range of the supporters (engine/store/passes.py): the server runs each statement on one
    core, and a large advance is all writes, which it does not parallelise by itself
    (bench/README.md: about a third faster on two cores). Each shard commits on its own; a
    shard that fails leaves the others done, and the next pass takes up what it left, as
    after any crash. SQLite has one writer: the whole pass is one transaction there."""
    with sessions.begin() as session:
        if connections <= 1 or session.get_bind().dialect.name == "sqlite":
            return passes.tick(session, now=now, segments=segments, batch=batch)
        summary = passes.enrol(session, now=now, segments=segments)
        parts = shards.shards(session, connections)

    def advance(shard: Shard) -> Summary:
        with sessions.begin() as session:
            return passes.advance(session, now=now, segments=segments, batch=batch, shard=shard)

    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="advance") as pool:
        for done in pool.map(advance, parts):
            summary.add(done)
    return summary


def worker_name() -> str:
    """Host and process: enough to tell, in `claimed_by`, who held a claim."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def policy_from(settings: Settings, sender: Identity | None = None) -> Policy:
    """The dispatch policy; the envelope is the organisation's (`sender`, default: as
    `for_sending` finds it)."""
    sender = sender or for_sending(settings)
    return Policy(
        envelope=Envelope(
            sender=sender.sender,
            base_url=settings.base_url,
            secret=settings.secret_key,
            reply_to=sender.reply_to,
        ),
        retry=RetryPolicy(),
        lease=timedelta(minutes=settings.lease_minutes),
        overdue_after=timedelta(hours=settings.overdue_after_hours),
        ambiguity_wait=timedelta(minutes=settings.ambiguity_wait_minutes),
        hourly_limit=settings.hourly_limit,
    )


def retention_from(settings: Settings) -> Retention:
    return Retention(
        contact=timedelta(days=settings.retention_days),
        donor=timedelta(days=settings.donor_retention_days),
    )


# A run that found its pass taken by another process tries again this much later.
RETRY_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class Skipped:
    """A pass not run here: another process holds its lock, and is running it now."""

    name: str


@dataclass(frozen=True)
class MadeWay:
    """A pass put off, or a dispatch pass cut short, while this process answers a burst of
    requests (engine/make_way.py); it runs again a moment later."""

    name: str


@dataclass
class Passes:
    """The periodic jobs on one database, as plain functions of `now`."""

    settings: Settings
    sessions: sessionmaker[Session]
    worker_id: str = field(default_factory=worker_name)
    transport_override: Transport | None = None
    # Jitter for retry backoff: several workers must not come back in step.
    rng: random.Random = field(default_factory=random.Random)
    # Set when the process shuts down: a dispatch pass stops after the batch in hand.
    stopping: threading.Event = field(default_factory=threading.Event)

    @cached_property
    def transport(self) -> Transport:
        return self.transport_override or configured_transport.from_settings(self.settings)

    @cached_property
    def identity(self) -> Identity:
        """Read once; in production, refused while placeholders remain."""
        return for_sending(self.settings)

    @cached_property
    def library(self) -> TemplateLibrary:
        return TemplateLibrary(templates_dir(self.settings), site=self.identity.site)

    @cached_property
    def policy(self) -> Policy:
        return policy_from(self.settings, self.identity)

    def segments(self) -> dict[str, Condition]:
        declared = declarations.read(self.settings.project_dir)
        if declared.problems:
            raise Invalid(
                "the declared files have problems",
                problems=declared.problems,
                hint="run `mobilise validate`",
            )
        return declared.conditions

    def journeys(self, now: datetime) -> Summary | Skipped:
        """The journey pass, unless another process is running it. The lock is held by a
        transaction of its own for the whole pass: the advance's shards each commit on
        their own connections meanwhile (`journeys_pass`)."""
        with self.sessions.begin() as holder:
            if not locks.try_hold(holder, "journeys"):
                return Skipped("journeys")
            return journeys_pass(
                self.sessions,
                now=now,
                segments=self.segments(),
                connections=self.settings.advance_connections,
            )

    def dispatch(self, now: datetime, *, make_way: Callable[[], bool] = never) -> Report:
        """The dispatch pass; it stops after the batch in hand when shutting down or when
        `make_way` says so (engine/make_way.py)."""
        return dispatch(
            self.sessions.begin,
            transport=self.transport,
            library=self.library,
            policy=self.policy,
            now=now,
            worker_id=self.worker_id,
            jitter=self.rng.random,
            stopping=lambda: self.stopping.is_set() or make_way(),
        )

    def retention(self, now: datetime, *, progress: Progress = QUIET) -> retention.RetentionReport:
        """Anonymise the supporters past the retention period at `now`, then delete the
        file transport's copies of the emails they were sent."""
        with self.sessions.begin() as session:
            done = retention.run(session, retention_from(self.settings), now, progress=progress)
        configured_transport.forget_copies(self.settings, done.message_ids or [])
        if done.anonymised:
            log.info("retention: %d supporter(s) anonymised", done.anonymised)
        return done

    def tick(self, now: datetime) -> tuple[Summary | Skipped, Report]:
        """Every periodic job once, in order, at `now`: nobody past the retention period is
        walked through a journey or sent an email."""
        self.retention(now)
        return self.journeys(now), self.dispatch(now)


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
