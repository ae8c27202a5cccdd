"""Advancing enrolled supporters set-based: the store's half of engine.rules.plan.

Every statement here acts on a whole population (one journey version, one step, a bounded
window of enrolment ids) with UPDATE … WHERE or INSERT … SELECT; no statement runs once per
supporter. The transitions are the planner's, step kind by step kind; the golden histories
and the end-to-end tests hold the two to the same behaviour. Enrolling is
engine/store/enrolling.py; splitting a pass among transactions, engine/store/shards.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    select,
    true,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from engine.rules.conditions import Condition, DonatedSinceEntry
from engine.rules.journeys import (
    EXIT,
    BranchStep,
    ExitStep,
    Journey,
    SendStep,
    WaitStep,
    WaitUntilStep,
)
from engine.rules.plan import arrival_due, wait_span
from engine.rules.windows import send_time
from engine.store import donations, outbox, restrictions, segments, suppressions
from engine.store.db import BULK, refresh_statistics
from engine.store.journeys import Loaded
from engine.store.models import (
    Donation,
    Enrolment,
    Event,
    Milestone,
    OutboxMessage,
    Petition,
    Suppression,
)
from engine.store.shards import BATCH, EVERYONE, Shard, id_windows
from engine.store.summary import Summary


@dataclass
class _Advancer:
    session: Session
    loaded: Loaded
    now: datetime
    named: Mapping[str, Condition]
    summary: Summary
    batch: int = BATCH
    shard: Shard = EVERYONE

    @property
    def journey(self) -> Journey:
        return self.loaded.journey

    def scope(self) -> ColumnElement[bool]:
        """The enrolments this advance may touch: the shard's, but none of a supporter whose
        processing is restricted (engine/store/restrictions.py): they wait where they are."""
        return and_(self.shard.where(), ~restrictions.restricted(Enrolment.supporter_id))

    def at(self, step_id: str) -> ColumnElement[bool]:
        """Active enrolments that have arrived at this step (a send's next step arrives when
        the email is planned) and whose previous email is not waiting to be sent."""
        return and_(
            Enrolment.journey_version_id == self.loaded.version_id,
            Enrolment.state == "active",
            Enrolment.step_id == step_id,
            Enrolment.step_at <= self.now,
            self.scope(),
            ~outbox.awaiting(Enrolment.id, besides=step_id),
        )

    def over(self, step_id: str) -> ColumnElement[bool]:
        """Due at this step, and (for a wait) its span has passed since the last email was
        sent: the store's `sent_too_recently`, with `now - span` a constant."""
        due = and_(self.at(step_id), Enrolment.due_at <= self.now)
        span = wait_span(self.journey.step(step_id))
        if span is None:
            return due
        return and_(due, ~outbox.sent_after(Enrolment.id, self.now - span))

    def ctx(self) -> segments.Context:
        return segments.Context(
            supporter_id=Enrolment.supporter_id,
            now=self.now,
            segments=self.named,
            entered_at=Enrolment.entered_at,
            enrolment_id=Enrolment.id,
        )

    def move(
        self, where: ColumnElement[bool], target: str, at: datetime | None = None, **extra: Any
    ) -> int:
        """Move to `target`, arriving `at` (default now; a send step's planned send time)."""
        if target == EXIT:
            return self.exit(where, "completed", **extra)
        at = self.now if at is None else at
        values = {
            "step_id": target,
            "step_at": at,
            "due_at": arrival_due(self.journey, target, at),
            **extra,
        }
        moved = (
            self.session.connection()
            .execute(update(Enrolment).where(where).values(**values))
            .rowcount
        )
        self.summary.moved += moved
        return moved

    def exit(self, where: ColumnElement[bool], reason: str, **extra: Any) -> int:
        values = {
            "state": "exited",
            "exit_reason": reason,
            "exited_at": self.now,
            "due_at": None,
            **extra,
        }
        gone = (
            self.session.connection()
            .execute(update(Enrolment).where(where).values(**values))
            .rowcount
        )
        self.summary.count(self.summary.exited, reason, gone)
        return gone

    def leave(self) -> int:
        """Goal and unsubscribe exits, at whatever step people are, due or not.

        Driven from the small side (gifts, suppressions) through the supporter index: the
        rows that leave are few, the active enrolments may be millions."""
        gone = 0
        goal = self.journey.goal
        if isinstance(goal, DonatedSinceEntry):
            givers = self.among(Donation.supporter_id, donations.counts(Donation, self.now))
            gone += self.exit(and_(givers, segments.where(goal, self.ctx())), "converted")
        elif goal is not None:
            active = and_(
                Enrolment.journey_version_id == self.loaded.version_id,
                Enrolment.state == "active",
                self.scope(),
            )
            gone += self.exit(and_(active, segments.where(goal, self.ctx())), "converted")
        if self.journey.exit_on_unsubscribe:
            # Opt-outs only: a block in force suppresses emails but lets people stay.
            opted_out = self.among(
                Suppression.supporter_id, suppressions.in_force(self.now, for_good=True)
            )
            gone += self.exit(opted_out, "unsubscribed")
        return gone

    def among(
        self, supporter_id: InstrumentedAttribute[int | None], *where: ColumnElement[bool]
    ) -> ColumnElement[bool]:
        """Active enrolments of this version (and shard) whose supporter has a row in a
        small table (gifts, suppressions): the IN list drives the enrolments' supporter-first
        key, rather than a walk over every active enrolment of the version.

        `journey_version_id + 0` keeps SQLite from starting at the due index instead (an
        expression is never an index key: SQLite's documented way to steer its planner).
        PostgreSQL may run an IN (subquery) as a semi-join from every active enrolment of
        the version (it did, over tables not yet analysed): there the list is an ARRAY,
        computed once, that the supporter-first key looks up."""
        ids = select(supporter_id).where(*where)
        listed: ColumnElement[bool] = (
            Enrolment.supporter_id == any_(func.ARRAY(ids.scalar_subquery()))
            if self.session.get_bind().dialect.name == "postgresql"
            else Enrolment.supporter_id.in_(ids)
        )
        return and_(
            listed,
            Enrolment.journey_id == self.journey.id,
            (Enrolment.journey_version_id + 0) == self.loaded.version_id,
            Enrolment.state == "active",
            self.scope(),
        )

    def step(self, step_id: str) -> int:
        step = self.journey.step(step_id)
        base = self.at(step_id)
        due = self.over(step_id)
        # Only a wait-until step moves people who are not due (its condition was met). For
        # the others, no due row means no statement: a window over a step where a million
        # people wait, none of them due, walks a million rows on SQLite (0.5 to 0.9 s).
        acts_on = base if isinstance(step, WaitUntilStep) else due
        windows = list(id_windows(self.session, acts_on, self.batch))
        capped: dict[int, datetime] = {}
        send_due = None
        if windows and isinstance(step, SendStep) and not step.send.transactional:
            send_due = send_time(self.now, self.journey, zone=self.loaded.zone, transactional=False)
            if self.journey.frequency_cap is not None:
                capped = outbox.cap_deferrals(self.session, self.loaded, due, send_due)
        changed = 0
        for window in windows:
            changed += self.step_window(step, and_(base, window), and_(due, window))
        if send_due is not None and capped:
            outbox.defer(self.session, step_id, send_due, capped)
            self.arrive_later(step_id, capped)
        return changed

    def arrive_later(self, step_id: str, capped: Mapping[int, datetime]) -> None:
        """The frequency cap deferred these emails: their enrolments arrive at the next
        step when the email is planned, as every other enrolment of the step does.

        `capped` holds every ready enrolment the cap would hold, also those whose email was
        dropped (no consent, suppressed): those were not deferred, and go on from the
        step's planned time. The deferred email is found through the outbox's key."""
        target = self.journey.successor(step_id)
        if target == EXIT:
            return
        table = Enrolment.__table__
        assert isinstance(table, Table)
        deferred = exists().where(
            OutboxMessage.enrolment_id == table.c.id,
            OutboxMessage.step_id == step_id,
            OutboxMessage.status == "queued",
            OutboxMessage.due_at == bindparam("at"),
        )
        self.session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("eid"), table.c.step_id == target, deferred)
            .values(step_at=bindparam("at"), due_at=bindparam("arrival")),
            [
                {"eid": eid, "at": at, "arrival": arrival_due(self.journey, target, at)}
                for eid, at in capped.items()
            ],
        )

    def step_window(self, step: Any, base: ColumnElement[bool], due: ColumnElement[bool]) -> int:
        journey = self.journey
        if isinstance(step, ExitStep):
            return self.exit(due, step.exit)
        if isinstance(step, SendStep):
            queued = outbox.queue(self.session, self.loaded, step, due, self.now)
            self.summary.count(self.summary.queued, (journey.id, step.id), queued)
            if queued > BULK:
                # The next steps look up these rows (`outbox.awaiting`): plan with them.
                # (Without it, in a shard, the next probe ran for minutes at 140,000.)
                refresh_statistics(self.session, "outbox")
            extra: dict[str, Any] = {}
            if step.send.variants:
                extra["variant"] = outbox.variant_columns(step)[1]
            planned = send_time(
                self.now, journey, zone=self.loaded.zone, transactional=step.send.transactional
            )
            return self.move(due, journey.successor(step.id), at=planned, **extra)
        if isinstance(step, WaitStep):
            return self.arrive(due, journey.successor(step.id))
        if isinstance(step, WaitUntilStep):
            met = self.until(step)
            changed = self.arrive(and_(base, met), journey.successor(step.id))
            target = step.wait_until.on_timeout
            if target == "exit":
                return changed + self.exit(due, "timeout")
            if target == "next":
                target = journey.successor(step.id)
            return changed + self.arrive(due, target)
        assert isinstance(step, BranchStep)
        return self.branch(step, due)

    def branch(
        self, step: BranchStep, where: ColumnElement[bool], *, arriving: bool = False
    ) -> int:
        """Each case's people go to its step, in order (a row moved by one case no longer
        matches `where`), the rest to `otherwise`; `arriving`: they reach the branch now."""
        passing = step.id if arriving else None
        changed = 0
        for case in step.branch.cases:
            case_of = and_(where, segments.where(case.when, self.ctx()))
            changed += self.arrive(case_of, case.goto, passing=passing)
        return changed + self.arrive(where, step.branch.otherwise, passing=passing)

    def arrive(self, where: ColumnElement[bool], target: str, *, passing: str | None = None) -> int:
        """Move to `target` now; at a branch, straight on to where it sends each person.

        A branch is due as soon as it is reached, and what it asks is asked at once: the two
        moves of a round (into the branch, then out of it) end where one does, and the table
        takes one write a row instead of two. Only from a wait: its people have no email
        waiting to be sent (`at`), as the branch requires. Who leaves the journey this way
        leaves from the branch passed (`passing`, reached now), as if they had stopped
        there."""
        step = self.journey.step(target) if target != EXIT else None
        if isinstance(step, BranchStep):
            return self.branch(step, where, arriving=True)
        if target == EXIT and passing is not None:
            return self.exit(where, "completed", step_id=passing, step_at=self.now)
        return self.move(where, target)

    def until(self, step: WaitUntilStep) -> ColumnElement[bool]:
        spec = step.wait_until
        if spec.milestone is not None:
            reached = self.session.scalar(
                select(func.count())
                .select_from(Milestone)
                .join(Petition, Petition.id == Milestone.petition_id)
                .where(
                    Petition.slug == (spec.petition or self.loaded.petition),
                    Milestone.threshold == spec.milestone,
                    Milestone.reached_at <= self.now,
                )
            )
            return true() if reached else false()
        if spec.event is not None:
            return exists().where(
                Event.supporter_id == Enrolment.supporter_id,
                Event.kind == spec.event,
                Event.occurred_at >= Enrolment.step_at,
                Event.occurred_at <= self.now,
            )
        assert spec.date is not None
        return true() if spec.date <= self.now else false()


def advance(
    session: Session,
    loaded: Loaded,
    *,
    now: datetime,
    named: Mapping[str, Condition],
    summary: Summary,
    batch: int = BATCH,
    shard: Shard = EVERYONE,
) -> int:
    """One round over every step of one version; the caller repeats until nothing moves."""
    advancer = _Advancer(session, loaded, now, named, summary, batch, shard)
    changed = advancer.leave()
    for step in loaded.journey.steps:
        changed += advancer.step(step.id)
    return changed
