"""Enrolling and advancing supporters set-based: the store's half of engine.rules.plan.

Every statement here acts on a whole population (one journey version, one step, a bounded
window of enrolment ids) with INSERT … SELECT or UPDATE … WHERE; no statement runs once per
supporter. The transitions are the planner's, step kind by step kind; the golden histories
and the end-to-end tests hold the two to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Subquery

from engine.rules.conditions import Condition
from engine.rules.journeys import (
    EXIT,
    BranchStep,
    ClickedTrigger,
    DonatedTrigger,
    ExitStep,
    Journey,
    MilestoneTrigger,
    SegmentTrigger,
    SendStep,
    SignedTrigger,
    WaitStep,
    WaitUntilStep,
)
from engine.rules.plan import arrival_due
from engine.store import outbox, segments
from engine.store.journeys import Loaded
from engine.store.models import (
    Click,
    Donation,
    Enrolment,
    Event,
    JourneyVersion,
    Milestone,
    OutboxMessage,
    Petition,
    Signature,
    Supporter,
)

# Ids per statement: large enough that per-statement overhead vanishes (10k-row chunks cost
# 4-6x more over 1M rows), small enough to bound each statement's locks and WAL growth.
BATCH = 250_000


@dataclass
class Summary:
    """What a pass did, for `tick`, `simulate` and the logs."""

    enrolled: dict[str, int] = field(default_factory=dict)
    queued: dict[tuple[str, str], int] = field(default_factory=dict)
    moved: int = 0
    exited: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[Any, int], key: Any, n: int) -> None:
        if n:
            bucket[key] = bucket.get(key, 0) + n

    @property
    def changed(self) -> int:
        return sum(self.enrolled.values()) + self.moved + sum(self.exited.values())


# --- enrolment


def _candidates(
    session: Session, loaded: Loaded, now: datetime, named: Mapping[str, Condition]
) -> Subquery:
    """(supporter_id, triggered_at) for everyone the trigger selects at `now`."""
    trigger = loaded.journey.trigger
    if isinstance(trigger, SignedTrigger | MilestoneTrigger):
        slug = trigger.signed if isinstance(trigger, SignedTrigger) else trigger.milestone.petition
        # Only signers an import or a form enrolled (`enrol`) enter; paper rows have no id.
        query: Select[int | None, datetime | None] = (
            select(Signature.supporter_id, Signature.signed_at)
            .join(Petition, Petition.id == Signature.petition_id)
            .where(
                Petition.slug == slug,
                Signature.enrol.is_(True),
                Signature.supporter_id.is_not(None),
                Signature.signed_at <= now,
            )
        )
        if isinstance(trigger, MilestoneTrigger):
            query = (
                select(Signature.supporter_id, Milestone.reached_at)
                .join(Petition, Petition.id == Signature.petition_id)
                .join(Milestone, Milestone.petition_id == Petition.id)
                .where(
                    Petition.slug == slug,
                    Signature.enrol.is_(True),
                    Signature.supporter_id.is_not(None),
                    Milestone.threshold == trigger.milestone.threshold,
                    Milestone.reached_at <= now,
                )
            )
        return query.subquery()
    first = (
        select(func.min(JourneyVersion.created_at))
        .where(JourneyVersion.journey_id == loaded.journey.id)
        .scalar_subquery()
    )
    if isinstance(trigger, DonatedTrigger):
        # Gifts from before the journey existed do not enrol anyone retroactively.
        return (
            select(Donation.supporter_id, func.max(Donation.donated_at))
            .where(
                Donation.supporter_id.is_not(None),
                Donation.donated_at >= first,
                Donation.donated_at <= now,
            )
            .group_by(Donation.supporter_id)
        ).subquery()
    if isinstance(trigger, ClickedTrigger):
        return (
            select(Click.supporter_id, func.max(Click.clicked_at))
            .join(OutboxMessage, OutboxMessage.id == Click.message_id)
            .where(
                OutboxMessage.journey_id == trigger.clicked.journey,
                OutboxMessage.step_id == trigger.clicked.step,
                Click.supporter_id.is_not(None),
                Click.clicked_at >= first,
                Click.clicked_at <= now,
            )
            .group_by(Click.supporter_id)
        ).subquery()
    assert isinstance(trigger, SegmentTrigger)
    ctx = segments.Context(supporter_id=Supporter.id, now=now, segments=named)
    return (
        select(Supporter.id, literal(now, Enrolment.entered_at.type))
        .where(segments.where(named[trigger.entered_segment], ctx))
        .subquery()
    )


def enrol(
    session: Session, loaded: Loaded, *, now: datetime, named: Mapping[str, Condition]
) -> int:
    """INSERT … SELECT the supporters the trigger selects and the re-entry policy admits."""
    journey = loaded.journey
    source = _candidates(session, loaded, now, named)
    who, when = source.c[0], source.c[1]
    previous = aliased(Enrolment)
    blocked = exists().where(previous.journey_id == journey.id, previous.supporter_id == who)
    if journey.reentry == "after_exit":
        blocked = blocked.where((previous.state == "active") | (previous.exited_at >= when))
    entries = (
        select(func.count()).where(previous.journey_id == journey.id, previous.supporter_id == who)
    ).scalar_subquery()
    first = journey.steps[0].id
    person = aliased(Supporter)
    rows = (
        select(
            literal(journey.id),
            literal(loaded.version_id),
            who,
            (entries + 1) if journey.reentry == "after_exit" else literal(1),
            literal("active"),
            literal(first),
            literal(now, Enrolment.step_at.type),
            literal(arrival_due(journey, first, now), Enrolment.due_at.type),
            literal(now, Enrolment.entered_at.type),
        )
        .join(person, person.id == who)
        # Erased people and paper signers have no address: nothing to walk them through.
        .where(person.email.is_not(None), person.erased_at.is_(None), ~blocked)
    )
    columns = [
        "journey_id",
        "journey_version_id",
        "supporter_id",
        "entry",
        "state",
        "step_id",
        "step_at",
        "due_at",
        "entered_at",
    ]
    statement = insert(Enrolment).from_select(columns, rows)
    # SQLAlchemy only keeps UPDATE/DELETE row counts unless asked (psycopg gives -1).
    statement = statement.execution_options(preserve_rowcount=True)
    return session.connection().execute(statement).rowcount


# --- advancing


def _windows(
    session: Session, base: ColumnElement[bool], batch: int
) -> Iterator[ColumnElement[bool]]:
    """Bounded id windows over the rows `base` selects (none when there are none)."""
    low, high = session.execute(
        select(func.min(Enrolment.id), func.max(Enrolment.id)).where(base)
    ).one()
    if low is None:
        return
    start = low
    while start <= high:
        yield Enrolment.id.between(start, start + batch - 1)
        start += batch


@dataclass
class _Advancer:
    session: Session
    loaded: Loaded
    now: datetime
    named: Mapping[str, Condition]
    summary: Summary
    batch: int = BATCH

    @property
    def journey(self) -> Journey:
        return self.loaded.journey

    def at(self, step_id: str) -> ColumnElement[bool]:
        return and_(
            Enrolment.journey_version_id == self.loaded.version_id,
            Enrolment.state == "active",
            Enrolment.step_id == step_id,
        )

    def ctx(self) -> segments.Context:
        return segments.Context(
            supporter_id=Enrolment.supporter_id,
            now=self.now,
            segments=self.named,
            entered_at=Enrolment.entered_at,
            enrolment_id=Enrolment.id,
        )

    def move(self, where: ColumnElement[bool], target: str, **extra: Any) -> int:
        if target == EXIT:
            return self.exit(where, "completed")
        values = {
            "step_id": target,
            "step_at": self.now,
            "due_at": arrival_due(self.journey, target, self.now),
            **extra,
        }
        moved = (
            self.session.connection()
            .execute(update(Enrolment).where(where).values(**values))
            .rowcount
        )
        self.summary.moved += moved
        return moved

    def exit(self, where: ColumnElement[bool], reason: str) -> int:
        values = {"state": "exited", "exit_reason": reason, "exited_at": self.now, "due_at": None}
        gone = (
            self.session.connection()
            .execute(update(Enrolment).where(where).values(**values))
            .rowcount
        )
        self.summary.count(self.summary.exited, reason, gone)
        return gone

    def leave(self) -> int:
        """Goal and unsubscribe exits, at whatever step people are, due or not."""
        active = and_(
            Enrolment.journey_version_id == self.loaded.version_id, Enrolment.state == "active"
        )
        gone = 0
        if self.journey.goal is not None:
            gone += self.exit(
                and_(active, segments.where(self.journey.goal, self.ctx())), "converted"
            )
        if self.journey.exit_on_unsubscribe:
            gone += self.exit(
                and_(active, outbox.suppressed(Enrolment.supporter_id)), "unsubscribed"
            )
        return gone

    def step(self, step_id: str) -> int:
        step = self.journey.step(step_id)
        base = self.at(step_id)
        due = and_(base, Enrolment.due_at <= self.now)
        changed = 0
        for window in list(_windows(self.session, base, self.batch)):
            changed += self.step_window(step, and_(base, window), and_(due, window))
        return changed

    def step_window(self, step: Any, base: ColumnElement[bool], due: ColumnElement[bool]) -> int:
        journey = self.journey
        if isinstance(step, ExitStep):
            return self.exit(due, step.exit)
        if isinstance(step, SendStep):
            queued = outbox.queue(self.session, self.loaded, step, due, self.now)
            self.summary.count(self.summary.queued, (journey.id, step.id), queued)
            extra: dict[str, Any] = {}
            if step.send.variants:
                extra["variant"] = outbox.variant_columns(step)[1]
            return self.move(due, journey.successor(step.id), **extra)
        if isinstance(step, WaitStep):
            return self.move(due, journey.successor(step.id))
        if isinstance(step, WaitUntilStep):
            met = self.until(step)
            changed = self.move(and_(base, met), journey.successor(step.id))
            target = step.wait_until.on_timeout
            if target == "exit":
                return changed + self.exit(due, "timeout")
            if target == "next":
                target = journey.successor(step.id)
            return changed + self.move(due, target)
        assert isinstance(step, BranchStep)
        changed = 0
        for case in step.branch.cases:
            changed += self.move(and_(due, segments.where(case.when, self.ctx())), case.goto)
        return changed + self.move(due, step.branch.otherwise)

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
) -> int:
    """One round over every step of one version; the caller repeats until nothing moves."""
    advancer = _Advancer(session, loaded, now, named, summary, batch)
    changed = advancer.leave()
    for step in loaded.journey.steps:
        changed += advancer.step(step.id)
    return changed
