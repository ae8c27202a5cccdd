"""The planner: journey + enrolment state + facts + now -> a frozen plan.

One pass moves an enrolment through every step that is due at `now` and stops at the first
wait (or the exit). Journeys keep their order: no step is taken while the enrolment's
previous email waits to be sent (`EnrolmentState.pending`), nor before the enrolment arrives
at it (`step_at`: a send's next step arrives when the email is planned, also when it is
dropped), and a wait counts from the moment that email was sent (`last_sent_at`), or from
its planned time when it was never sent.

The store applies the same rules set-based, step by step, for whole populations
(engine/store/enrolments.py); this function is their specification, and what the golden
histories and the property tests run.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from engine.rules.conditions import Condition, Facts, holds
from engine.rules.durations import parse_duration
from engine.rules.journeys import (
    EXIT,
    BranchStep,
    ExitStep,
    Journey,
    SendSpec,
    SendStep,
    SignedTrigger,
    Step,
    WaitStep,
    WaitUntilStep,
)
from engine.rules.windows import send_time

# Knuth's multiplicative hash spreads consecutive enrolment ids over the buckets; the store
# computes the same expression in SQL (engine/store/outbox.py), so keep them together.
VARIANT_MULTIPLIER = 2654435761


@dataclass(frozen=True)
class EnrolmentState:
    enrolment_id: int
    step_id: str | None
    entered_at: datetime
    step_at: datetime
    due_at: datetime | None
    status: Literal["active", "exited"] = "active"
    exit_reason: str | None = None
    variant: str | None = None
    done: frozenset[str] = frozenset()
    exited_at: datetime | None = None
    # An email of this enrolment is queued, held, being sent or not known to be sent
    # (ambiguous): no step is taken until it is sent or dropped. The pass sets it when it
    # queues one; the store clears it on sending.
    pending: bool = False
    # When this enrolment's latest email was sent: waits count from it.
    last_sent_at: datetime | None = None


@dataclass(frozen=True)
class Enrol:
    step_id: str
    at: datetime


@dataclass(frozen=True)
class Advance:
    from_step: str
    to_step: str
    due_at: datetime
    why: str


@dataclass(frozen=True)
class Send:
    step_id: str
    template: str
    variant: str | None
    due_at: datetime
    status: Literal["queued", "suppressed"]
    reason: str | None
    key: tuple[int, str]
    transactional: bool


@dataclass(frozen=True)
class Exit:
    step_id: str | None
    reason: str


@dataclass(frozen=True)
class Wait:
    step_id: str
    until: datetime | None


Action = Enrol | Advance | Send | Exit | Wait


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    state: EnrolmentState | None

    @property
    def sends(self) -> list[Send]:
        return [a for a in self.actions if isinstance(a, Send)]


def outbox_key(enrolment_id: int, step_id: str) -> tuple[int, str]:
    """The idempotency key of an email: one per enrolment and step, UNIQUE in the outbox."""
    return (enrolment_id, step_id)


def step_salt(step_id: str) -> int:
    return zlib.crc32(step_id.encode()) & 0x7FFFFFFF


def variant_bucket(seed: int, step_id: str, total: int) -> int:
    return (seed * VARIANT_MULTIPLIER + step_salt(step_id)) % total


def pick_variant(spec: SendSpec, *, seed: int, step_id: str) -> tuple[str, str | None]:
    """(template, variant name): deterministic from the seed (the enrolment id)."""
    if spec.template is not None:
        return spec.template, None
    bucket = variant_bucket(seed, step_id, sum(v.weight for v in spec.variants))
    for variant in spec.variants:
        if bucket < variant.weight:
            return variant.template, variant.name
        bucket -= variant.weight
    raise AssertionError("bucket beyond total weight")


def arrival_due(journey: Journey, step_id: str, at: datetime) -> datetime:
    """When a step that was entered at `at` next needs attention."""
    step = journey.step(step_id)
    span = wait_span(step)
    if span is not None:
        return at + span
    if isinstance(step, WaitUntilStep):
        assert step.wait_until.date is not None
        return step.wait_until.date.astimezone(UTC)
    return at


def wait_span(step: Step) -> timedelta | None:
    """How long a step waits, counted from the previous email's sending: a wait's duration,
    a wait-until's timeout; None for the other steps (and a wait until a date)."""
    if isinstance(step, WaitStep):
        return parse_duration(step.wait)
    if isinstance(step, WaitUntilStep) and step.wait_until.timeout is not None:
        return parse_duration(step.wait_until.timeout)
    return None


def sent_too_recently(step: Step, last_sent_at: datetime | None, now: datetime) -> bool:
    """A wait is not over until its span has passed since the previous email was sent."""
    span = wait_span(step)
    return span is not None and last_sent_at is not None and last_sent_at > now - span


def until_met(
    step: WaitUntilStep, facts: Facts, *, petition: str, since: datetime, now: datetime
) -> bool:
    spec = step.wait_until
    if spec.milestone is not None:
        reached = facts.milestones.get((spec.petition or petition, spec.milestone))
        return reached is not None and reached <= now
    if spec.event is not None:
        return any(kind == spec.event and since <= at <= now for kind, at in facts.events)
    return spec.date is not None and spec.date <= now


def signed_too_long_ago(journey: Journey, spec: SendSpec, facts: Facts, now: datetime) -> bool:
    """The step's `max_signature_age` has passed since the supporter signed the journey's
    petition (their latest signature of it)."""
    trigger = journey.trigger
    if spec.max_signature_age is None or not isinstance(trigger, SignedTrigger):
        return False
    cut = now - parse_duration(spec.max_signature_age)
    return not any(slug == trigger.signed and at >= cut for slug, at in facts.signatures)


def cap_delay(journey: Journey, sends: tuple[datetime, ...], due: datetime) -> datetime | None:
    """Deferred due time under the frequency cap, or None when the email may go at `due`."""
    cap = journey.frequency_cap
    if cap is None:
        return None
    recent = [s for s in sends if due - cap.period < s <= due + cap.period]
    return capped_until(journey, len(recent), max(recent, default=None))


def capped_until(journey: Journey, recent: int, latest: datetime | None) -> datetime | None:
    """The cap's decision from the campaign emails within a period either side of the due
    time (`recent` of them, the latest due at `latest`): None, or when the email may go.
    The store counts them in SQL and asks this (engine/store/outbox.py)."""
    cap = journey.frequency_cap
    if cap is None or recent < cap.max or latest is None:
        return None
    return latest + cap.period


@dataclass
class _Pass:
    journey: Journey
    facts: Facts
    now: datetime
    zone: str
    petition: str
    segments: Mapping[str, Condition]
    actions: list[Action] = field(default_factory=list)
    sends: tuple[datetime, ...] = ()

    def holds(self, condition: Condition, entered_at: datetime) -> bool:
        return holds(
            condition, self.facts, now=self.now, segments=self.segments, entered_at=entered_at
        )

    def send(self, state: EnrolmentState, step: SendStep) -> Send:
        spec = step.send
        template, variant = pick_variant(spec, seed=state.enrolment_id, step_id=step.id)
        due = send_time(self.now, self.journey, zone=self.zone, transactional=spec.transactional)
        status: Literal["queued", "suppressed"] = "queued"
        reason = None
        if signed_too_long_ago(self.journey, spec, self.facts, self.now):
            status, reason = "suppressed", "signed-too-long-ago"
        elif spec.consent is not None and spec.consent not in self.facts.consents:
            status, reason = "suppressed", f"no-consent:{spec.consent}"
        elif self.facts.unsubscribed:
            status, reason = "suppressed", "unsubscribed"
        elif self.facts.blocked:
            status, reason = "suppressed", "blocked"
        elif not spec.transactional:
            reason = "quiet-hours" if due > self.now else None
            deferred = cap_delay(self.journey, self.sends, due)
            if deferred is not None:
                due, reason = deferred, "frequency-cap"
            self.sends += (due,)
        key = outbox_key(state.enrolment_id, step.id)
        return Send(step.id, template, variant, due, status, reason, key, spec.transactional)

    def move(
        self, state: EnrolmentState, target: str, why: str, at: datetime | None = None
    ) -> EnrolmentState:
        """Move to `target`, arriving `at` (default now; a send step's planned send time)."""
        assert state.step_id is not None
        if target == EXIT:
            return self.exit(state, "completed")
        if target in state.done:
            # Validation refuses loops; a stray one still never repeats a step.
            return self.exit(state, "loop")
        at = self.now if at is None else at
        due = arrival_due(self.journey, target, at)
        self.actions.append(Advance(state.step_id, target, due, why))
        return replace(
            state,
            step_id=target,
            step_at=at,
            due_at=due,
            done=state.done | {state.step_id},
        )

    def exit(self, state: EnrolmentState, reason: str) -> EnrolmentState:
        self.actions.append(Exit(state.step_id, reason))
        done = state.done | {state.step_id} if state.step_id else state.done
        return replace(
            state, status="exited", exit_reason=reason, due_at=None, done=done, exited_at=self.now
        )

    def step_once(self, state: EnrolmentState) -> tuple[EnrolmentState, bool]:
        """Process the current step; False when the enrolment must wait (or has left)."""
        assert state.step_id is not None
        journey = self.journey
        if self.facts.restricted:
            return state, False  # kept as it is until the restriction is lifted
        if journey.goal is not None and self.holds(journey.goal, state.entered_at):
            return self.exit(state, "converted"), False
        if journey.exit_on_unsubscribe and self.facts.unsubscribed:
            return self.exit(state, "unsubscribed"), False
        if state.pending:
            return state, False
        if state.step_at > self.now:
            # Not there yet: a send's next step is taken when the email is planned, also
            # when the email was dropped instead of queued.
            return state, False
        step = journey.step(state.step_id)
        due = state.due_at is not None and state.due_at <= self.now
        over = due and not sent_too_recently(step, state.last_sent_at, self.now)
        if isinstance(step, ExitStep):
            return self.exit(state, step.exit), False
        if isinstance(step, SendStep):
            sent = self.send(state, step)
            self.actions.append(sent)
            state = replace(state, pending=sent.status == "queued")
            if sent.variant is not None:
                state = replace(state, variant=sent.variant)
            return self.move(state, journey.successor(step.id), "sent", at=sent.due_at), True
        if isinstance(step, WaitStep):
            if not over:
                return state, False
            return self.move(state, journey.successor(step.id), "waited"), True
        if isinstance(step, WaitUntilStep):
            if until_met(
                step, self.facts, petition=self.petition, since=state.step_at, now=self.now
            ):
                return self.move(state, journey.successor(step.id), "reached"), True
            if not over:
                return state, False
            target = step.wait_until.on_timeout
            if target == "exit":
                return self.exit(state, "timeout"), False
            if target == "next":
                target = journey.successor(step.id)
            return self.move(state, target, "timeout"), True
        assert isinstance(step, BranchStep)
        for index, case in enumerate(step.branch.cases):
            if self.holds(case.when, state.entered_at):
                return self.move(state, case.goto, f"case {index + 1}"), True
        return self.move(state, step.branch.otherwise, "else"), True


def plan(
    journey: Journey,
    state: EnrolmentState | None,
    facts: Facts,
    now: datetime,
    *,
    petition: str,
    segments: Mapping[str, Condition],
    zone: str = "Europe/Paris",
    enrol_as: int | None = None,
) -> Plan:
    """One pass for one supporter. `enrol_as` is the new enrolment's id when a trigger fired
    and the caller found no enrolment (it is also the A/B seed)."""
    run = _Pass(journey, facts, now, zone, petition, segments, sends=facts.campaign_sends)
    if state is None:
        if enrol_as is None or facts.restricted:
            return Plan((), None)
        first = journey.steps[0].id
        run.actions.append(Enrol(first, now))
        due = arrival_due(journey, first, now)
        state = EnrolmentState(enrol_as, first, now, now, due)
    # A journey is a DAG (validation), so a pass visits each step at most once.
    for _ in range(len(journey.steps) + 1):
        if state.status != "active":
            break
        state, more = run.step_once(state)
        if not more:
            break
    if state.status == "active" and state.step_id is not None:
        run.actions.append(Wait(state.step_id, state.due_at))
    return Plan(tuple(run.actions), state)
