"""The periodic passes on one database, as plain functions of `now`.

`Passes` holds them: the journey pass (enrol, advance; milestones are marked as signatures
arrive and `wait_until: milestone` is read by the advance, so the milestone check is part
of it), the dispatch pass and the retention pass (supporters past the retention period
anonymised, docs/privacy.md). `mobilise tick --now` calls them once; the scheduler
(engine/scheduler.py) calls them on a timer with the wall clock.

The journey pass is run by one process at a time (on PostgreSQL, an advisory lock per pass
held for the whole pass, engine/store/locks.py): two processes running it at once would do
the same work twice and wait on each other's rows; a process that finds it taken gets
`Skipped`. Dispatch runs in every process at once and shares the work: claims take rows
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
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from engine import declarations
from engine.config import Settings
from engine.errors import Invalid
from engine.make_way import never
from engine.progress import QUIET, Progress
from engine.render.library import TemplateLibrary
from engine.rules.conditions import Condition
from engine.rules.rights import Retention
from engine.send import configured_transport
from engine.send.compose import Envelope
from engine.send.dispatcher import Policy, Report, dispatch
from engine.send.identity import Identity, for_sending, templates_dir
from engine.send.retries import RetryPolicy
from engine.send.transport import Transport
from engine.store import locks, passes, retention, shards
from engine.store.shards import BATCH, Shard
from engine.store.summary import Summary

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
            secret=settings.keys,
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


@dataclass(frozen=True)
class Skipped:
    """A pass not run here: another process holds its lock, and is running it now."""

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

    def journeys(
        self, now: datetime, *, segments: dict[str, Condition] | None = None
    ) -> Summary | Skipped:
        """The journey pass, unless another process is running it. The lock is held by a
        transaction of its own for the whole pass: the advance's shards each commit on
        their own connections meanwhile (`journeys_pass`). `segments`: the declared ones,
        when the caller has read them already (else read here)."""
        with self.sessions.begin() as holder:
            if not locks.try_hold(holder, "journeys"):
                return Skipped("journeys")
            return journeys_pass(
                self.sessions,
                now=now,
                segments=self.segments() if segments is None else segments,
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

    def retention(
        self, now: datetime, *, progress: Progress = QUIET
    ) -> retention.RetentionReport | Skipped:
        """Anonymise the supporters past the retention period at `now`, then delete the
        file transport's copies of the emails they were sent; unless another process is
        running it (both API processes of `mobilise run` schedule it)."""
        with self.sessions.begin() as session:
            if not locks.try_hold(session, "retention"):
                return Skipped("retention")
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
