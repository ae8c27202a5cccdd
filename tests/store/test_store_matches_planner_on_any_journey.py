"""Differential test over generated journeys: the set-based store and the pure planner walk
everyone the same way.

Given any valid journey (entered by signing, a milestone or a gift, with or without re-
entry; sends with or without consent, variants, `max_signature_age`; waits, waits until a
milestone, an event or a date with their timeouts; branches and goals on any condition;
exits; quiet hours, send windows, a frequency cap, in three time zones; steps listed in
any order) and a few people who sign at various times (some long ago), give (one-off or
monthly), change their consents, unsubscribe or get blocked, click and record events,
when passes run at the same instants (at set spans, at the next due time, again at the
same instant) on a real database, each after a dispatcher sent what was due (at its due
time, late, or without knowing it until the next pass), and in the planner (pure, from
the same facts), then each person's history is the same: every email (step, template,
variant, status, reason, due and sent times) and every enrolment (state, step, arrival,
due time, exit and its reason). A second pass at the same instant changes nothing. And
journeys keep their order: an enrolment has at most one email still to be sent (or not
known to be sent), and none is due before the previous one was sent.

Normal runs try a few derandomised examples per backend; a deep local run sets
`MOBILISE_DEEP_EXAMPLES` (e.g. 2000) and draws fresh ones."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from hypothesis import HealthCheck, event, given, settings
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.rules.conditions import Condition
from engine.rules.journeys import Journey, MilestoneTrigger, SignedTrigger
from engine.rules.plan import EnrolmentState, plan
from engine.store import (
    claims,
    donations,
    events,
    journeys,
    milestones,
    outbox,
    suppressions,
    virtual,
)
from engine.store.donations import DonationRow
from engine.store.models import Click, Consent, Enrolment, OutboxMessage
from engine.store.passes import tick
from tests.store.journey_helpers import (
    PETITION,
    declare,
    repository,
    seed_campaign,
    sent_by,
    sign,
    supporter_id,
)
from tests.store.journey_strategies import EVENT, Dispatcher, Person, Scenario, scenarios
from tests.store.supporter_facts import facts_for

DEEP = int(os.environ.get("MOBILISE_DEEP_EXAMPLES", "0"))


@dataclass
class Walk:
    """The planner's side for one person: their enrolments (a re-entry adds one) and the
    emails planned for them."""

    states: list[EnrolmentState] = field(default_factory=list)
    # [step, template, variant, status, reason, due_at, sent_at], in the order planned
    emails: list[list[Any]] = field(default_factory=list)

    def send_due(self, now: datetime, dispatcher: Dispatcher) -> None:
        """What `dispatch` does, planned: every queued email due by now is sent at its due
        time (`virtual.send_due`), at `now` by a late dispatcher, or not known to be sent
        by an unsure one, which the next pass finds confirmed at its due time; an email
        sent lets its enrolment go on."""
        for email in self.emails:
            if email[3] == "ambiguous":
                email[3], email[4], email[6] = "sent", None, email[5]
                self.sent(email[6])
        for email in self.emails:
            if email[3] == "queued" and email[5] <= now:
                if dispatcher == "unsure":
                    email[3] = "ambiguous"
                    continue
                email[3], email[6] = "sent", now if dispatcher == "late" else email[5]
                self.sent(email[6])

    def sent(self, at: datetime) -> None:
        if self.states and self.states[-1].pending:
            self.states[-1] = replace(self.states[-1], pending=False, last_sent_at=at)


@dataclass
class World:
    """The database side: the scenario's facts, recorded when they happen."""

    session: Session
    scenario: Scenario
    petition_id: int
    done: set[str] = field(default_factory=set)

    def at(self, offset: timedelta) -> datetime:
        return self.scenario.start + offset

    def record(self, now: datetime) -> None:
        """Record every fact that happened by `now` and is not recorded yet, in time order."""
        due: list[tuple[datetime, str, Any]] = []
        for threshold, offset in self.scenario.milestones.items():
            if offset is not None:
                due.append((self.at(offset), f"milestone {threshold}", threshold))
        for person in self.scenario.people:
            signs = self.at(person.signs)
            due.append((signs, f"{person.name} signs", person))
            for i, gift in enumerate(person.gifts):
                due.append((max(signs, self.at(gift.at)), f"{person.name} gift {i}", gift))
            for i, change in enumerate(person.consent_changes):
                due.append((max(signs, self.at(change[0])), f"{person.name} consent {i}", change))
            for i, block in enumerate(person.suppressions):
                due.append((max(signs, self.at(block[0])), f"{person.name} block {i}", block))
            for i, moment in enumerate(person.events):
                due.append((max(signs, self.at(moment)), f"{person.name} event {i}", moment))
        # At one instant, signing comes first: the person's other facts need them known.
        for when, key, what in sorted(due, key=lambda d: (d[0], not d[1].endswith(" signs"), d[1])):
            if when <= now and key not in self.done:
                self.done.add(key)
                self.apply(when, key, what)
        self.clicks(now)
        self.session.flush()

    def apply(self, when: datetime, key: str, what: Any) -> None:
        session = self.session
        name = key.split()[0]
        if key.startswith("milestone"):
            milestones.check(session, petition_id=self.petition_id, count=what, now=when)
        elif isinstance(what, Person):
            sign(
                session,
                self.petition_id,
                when,
                {name: what.consents},
                postal_code=what.postal_code,
                signed_at=when - what.age,
            )
        elif " gift " in key:
            frequency: Literal["one-off", "monthly"] = "monthly" if what.monthly else "one-off"
            row = DonationRow(
                f"{name}@example.org", what.cents, "EUR", self.at(what.at), frequency, key
            )
            donations.record(session, [row], now=when)
        elif " consent " in key:
            session.add(
                Consent(
                    supporter_id=supporter_id(session, name),
                    purpose=what[1],
                    granted=what[2],
                    wording_version="v1",
                    source="test",
                    recorded_at=when,
                )
            )
        elif " block " in key:
            reason = "unsubscribe" if what[1] is None else "blocked"
            until = None if what[1] is None else when + what[1]
            suppressions.add_many(
                session,
                [
                    suppressions.SuppressionCreate(
                        reason, when, supporter_id=supporter_id(session, name), expires_at=until
                    )
                ],
                secret=SECRET,
                now=when,
            )
        else:
            events.append(
                session,
                kind=EVENT,
                source_key=key,
                occurred_at=when,
                supporter_id=supporter_id(session, name),
            )

    def clicks(self, now: datetime) -> None:
        """A person clicks the email of a step some time after it was sent."""
        for person in self.scenario.people:
            for i, (step_id, after) in enumerate(person.clicks):
                key = f"{person.name} click {i}"
                if key in self.done or f"{person.name} signs" not in self.done:
                    continue
                found = self.session.execute(
                    select(OutboxMessage.id, OutboxMessage.sent_at).where(
                        OutboxMessage.supporter_id == supporter_id(self.session, person.name),
                        OutboxMessage.step_id == step_id,
                        OutboxMessage.sent_at.is_not(None),
                    )
                ).first()
                if found is None or found[1] is None or found[1] + after > now:
                    continue
                self.done.add(key)
                self.session.add(
                    Click(
                        message_id=found[0],
                        link_position=0,
                        supporter_id=supporter_id(self.session, person.name),
                        clicked_at=found[1] + after,
                    )
                )

    def history(self, name: str) -> tuple[list[list[Any]], list[tuple[Any, ...]]]:
        sid = supporter_id(self.session, name)
        emails = self.session.execute(
            select(
                OutboxMessage.step_id,
                OutboxMessage.template,
                OutboxMessage.variant,
                OutboxMessage.status,
                OutboxMessage.reason,
                OutboxMessage.due_at,
                OutboxMessage.sent_at,
            )
            .where(OutboxMessage.supporter_id == sid)
            .order_by(OutboxMessage.id)
        ).all()
        enrolments = self.session.execute(
            select(*ENROLMENT).where(Enrolment.supporter_id == sid).order_by(Enrolment.entry)
        ).all()
        return [list(e) for e in emails], [tuple(e) for e in enrolments]

    def triggered(self, name: str, journey: Journey, now: datetime) -> datetime | None:
        """When the journey's trigger last selected the person by `now` (None: not yet):
        signing, the petition reaching the milestone (once they signed), or their latest
        gift since the journey exists."""
        if f"{name} signs" not in self.done:
            return None
        person = next(p for p in self.scenario.people if p.name == name)
        trigger = journey.trigger
        if isinstance(trigger, SignedTrigger):
            return self.at(person.signs) - person.age
        if isinstance(trigger, MilestoneTrigger):
            reached = self.scenario.milestones[trigger.milestone.threshold]
            return self.at(reached) if reached is not None and self.at(reached) <= now else None
        synced = self.scenario.start - timedelta(days=1)
        gifts = [
            self.at(g.at)
            for i, g in enumerate(person.gifts)
            if f"{name} gift {i}" in self.done and synced <= self.at(g.at) <= now
        ]
        return max(gifts, default=None)


ENROLMENT = (
    Enrolment.id,
    Enrolment.state,
    Enrolment.step_id,
    Enrolment.step_at,
    Enrolment.due_at,
    Enrolment.exit_reason,
    Enrolment.exited_at,
    Enrolment.variant,
    Enrolment.entered_at,
)


SECRET = "differential-test-secret"


def may_reenter(journey: Journey, previous: EnrolmentState | None, triggered_at: datetime) -> bool:
    """The re-entry policy the store applies in SQL, for the planner's side of the test:
    `never` keeps one enrolment per supporter and journey for good."""
    if previous is None:
        return True
    if journey.reentry == "never" or previous.status == "active":
        return False
    return previous.exited_at is not None and triggered_at > previous.exited_at


def planned(state: EnrolmentState) -> tuple[Any, ...]:
    return (
        state.enrolment_id,
        state.status,
        state.step_id,
        state.step_at,
        state.due_at,
        state.exit_reason,
        state.exited_at,
        state.variant,
        state.entered_at,
    )


def instants(world: World, now: datetime, spec: object) -> datetime:
    """The next pass instant after `now` for a tick of the scenario."""
    if spec == "again":
        return now
    if spec == "due":
        found = virtual.next_due(world.session, journeys.running(world.session), after=now)
        return found if found is not None else now + timedelta(days=1)
    assert isinstance(spec, timedelta)
    return now + spec


def run(session: Session, scenario: Scenario) -> None:
    campaign, journey = declare(scenario.journey, zone=scenario.zone)
    petition_id = seed_campaign(session, campaign, scenario.start - timedelta(days=1))
    named = repository().conditions
    world = World(session, scenario, petition_id)
    walks = {p.name: Walk() for p in scenario.people}
    now = scenario.start
    for spec in [timedelta(0), *scenario.ticks]:
        now = instants(world, now, spec)
        world.record(now)
        dispatch(session, now, scenario.dispatcher)
        for walk in walks.values():
            walk.send_due(now, scenario.dispatcher)
        signed = [p.name for p in scenario.people if f"{p.name} signs" in world.done]
        facts = {name: facts_for(session, supporter_id(session, name), now=now) for name in signed}
        if scenario.batch is None:
            tick(session, now=now, segments=named)
        else:
            tick(session, now=now, segments=named, batch=scenario.batch)
        for name in signed:
            walk_one(world, walks[name], journey, facts[name], named, name, now)
        assert tick(session, now=now, segments=named).changed == 0, now
        journeys_keep_their_order(session, now)
    event(f"dispatcher {scenario.dispatcher}")
    for walk in walks.values():
        for email in walk.emails:
            event(f"email {email[3]} {(email[4] or '').split(':')[0]}")
        for state in walk.states:
            event(f"enrolment {state.status} {state.exit_reason or ''}")
        event(f"enrolments: {len(walk.states)}")


def dispatch(session: Session, now: datetime, dispatcher: Dispatcher) -> None:
    """The emails due by `now`: sent at their due time, sent at `now` (late), or sent
    without knowing it (unsure: `ambiguous`, as a request that timed out leaves them), the
    ones left so at the previous pass being confirmed by the provider's events."""
    if dispatcher == "on time":
        sent_by(session, now)
        return
    due = (OutboxMessage.status == "queued", OutboxMessage.due_at <= now)
    if dispatcher == "late":
        session.execute(update(OutboxMessage).where(*due).values(status="sent", sent_at=now))
        return
    confirmed = [message_id for message_id, _, _ in claims.ambiguous(session)]
    claims.settle_ambiguous(session, confirmed=confirmed, resend=[], now=now)
    session.execute(
        update(OutboxMessage)
        .where(*due)
        .values(status="ambiguous", claimed_at=OutboxMessage.due_at)
    )


def journeys_keep_their_order(session: Session, now: datetime) -> None:
    """At most one email of an enrolment is still to be sent, or not known to be sent; and
    none is due before the previous one of its enrolment was sent."""
    rows = session.execute(
        select(
            OutboxMessage.enrolment_id,
            OutboxMessage.status,
            OutboxMessage.due_at,
            OutboxMessage.sent_at,
        ).order_by(OutboxMessage.id)
    ).all()
    by_enrolment: dict[int, list[Any]] = {}
    for row in rows:
        by_enrolment.setdefault(row[0], []).append(row)
    for emails in by_enrolment.values():
        assert sum(e[1] in outbox.AWAITING for e in emails) <= 1, (now, emails)
        for before, after in itertools.pairwise(emails):
            if before[3] is not None and after[1] != "suppressed":
                assert after[2] >= before[3], (now, emails)


def walk_one(
    world: World,
    walk: Walk,
    journey: Journey,
    facts: Any,
    named: dict[str, Condition],
    name: str,
    now: datetime,
) -> None:
    """The planner's pass for one person (entering when the trigger selects them and the
    re-entry policy lets them), then the two histories side by side."""
    emails, enrolments = world.history(name)
    state = walk.states[-1] if walk.states else None
    enrol_as = None
    triggered = world.triggered(name, journey, now)
    if (
        triggered is not None
        and (state is None or state.status == "exited")
        and may_reenter(journey, state, triggered)
    ):
        assert len(enrolments) > len(walk.states), f"{name} was not enrolled at {now}"
        enrol_as = enrolments[len(walk.states)][0]
        state = None
    result = plan(
        journey,
        state,
        facts,
        now,
        petition=PETITION,
        segments=named,
        zone=world.scenario.zone,
        enrol_as=enrol_as,
    )
    if result.state is not None:
        if enrol_as is not None:
            walk.states.append(result.state)
        else:
            walk.states[-1] = result.state
    walk.emails += [
        [s.step_id, s.template, s.variant, s.status, s.reason, s.due_at, None] for s in result.sends
    ]
    assert (emails, enrolments) == (walk.emails, [planned(s) for s in walk.states]), (name, now)


@settings(
    max_examples=DEEP or 5,
    derandomize=not DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_the_store_and_the_planner_agree_on_any_journey(
    session: Session, scenario: Scenario
) -> None:
    savepoint = session.begin_nested()
    try:
        run(session, scenario)
    finally:
        savepoint.rollback()
