"""The dispatch's last look at a claimed batch: which rows go now, later, or never.

The facts of the whole batch are loaded at once (engine.store.recipients: people,
consents, suppressions, recent emails, confirmations), then engine.send.gate decides row by
row. Rows let through go on to be rendered with those facts; the others are recorded as
suppressed or queued later by the dispatcher (engine/send/dispatcher.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from engine.rules import optin
from engine.send import gate
from engine.store import journeys, recipients
from engine.store.claims import Claimed, Outcome
from engine.store.journeys import Loaded


def _step_sends(loaded: Loaded) -> timedelta | None:
    cap = loaded.journey.frequency_cap
    return cap.period if cap is not None else None


def _deferred(row: Claimed, due_at: datetime, reason: str) -> Outcome:
    # A deferral is not an attempt: the claim's count is given back.
    return Outcome(row.id, "queued", reason, due_at=due_at, attempts_delta=-1)


@dataclass
class Ready:
    row: Claimed
    person: recipients.Person


@dataclass
class Batch:
    """A claimed batch after the last look: the rows that go, the facts they render
    with, and the campaign emails it lets through, by supporter."""

    ready: list[Ready]
    facts: recipients.Recipients
    let_through: Mapping[int, list[datetime]]


def _loaded_for(known: dict[int, Loaded], session: Session, version_ids: set[int]) -> None:
    """Add to `known` (the pass's journey versions by id) the versions it lacks."""
    for version_id in version_ids - known.keys():
        known[version_id] = journeys.version_by_pk(session, version_id)


def look(
    session: Session,
    claimed: list[Claimed],
    in_flight: Mapping[int, list[datetime]],
    *,
    known: dict[int, Loaded],
    now: datetime,
) -> tuple[Batch, list[Outcome]]:
    """The rows of `claimed` that go now (`Batch`), and the outcomes of the others.
    `in_flight`: the campaign emails of the batch the transport carries, by supporter;
    `known`: the pass's journey versions by id, added to as needed."""
    # Double opt-in confirmations belong to no journey (engine/rules/optin.py).
    pending = {row.id: optin.pending_of(row.enrolment_id) for row in claimed}
    journeyed = [row for row in claimed if pending[row.id] is None]
    versions = {row.journey_version_id for row in journeyed}
    _loaded_for(known, session, versions)
    # Once per step, not per row: a batch is usually one or two steps.
    purpose_of = {
        key: gate.consent_purpose(known[key[0]], key[1])
        for key in {(row.journey_version_id, row.step_id) for row in journeyed}
    }
    purposes = {purpose for purpose in purpose_of.values() if purpose is not None}
    periods = [
        p
        for row in claimed
        if not row.transactional and (p := _step_sends(known[row.journey_version_id])) is not None
    ]
    facts = recipients.load(
        session,
        [row.supporter_id for row in claimed],
        purposes=purposes,
        version_ids=versions,
        recent_since=now - max(periods) if periods else None,
        now=now,
        pending_ids=[p for p in pending.values() if p is not None],
    )
    ready: list[Ready] = []
    decided: list[Outcome] = []
    # This batch's own: the batch in flight is recorded before the next look.
    let_through: dict[int, list[datetime]] = defaultdict(list)
    for row in claimed:
        loaded = known.get(row.journey_version_id) if pending[row.id] is None else None
        verdict = gate.decide(
            row,
            loaded,
            facts,
            purpose=purpose_of.get((row.journey_version_id, row.step_id)),
            now=now,
            sent_now=[*in_flight.get(row.supporter_id, ()), *let_through[row.supporter_id]],
        )
        if isinstance(verdict, gate.Never):
            decided.append(Outcome(row.id, "suppressed", verdict.reason, attempts_delta=-1))
        elif isinstance(verdict, gate.Later):
            decided.append(_deferred(row, verdict.due_at, verdict.reason))
        else:
            if not row.transactional:
                let_through[row.supporter_id].append(now)
            ready.append(Ready(row, facts.people[row.supporter_id]))
    return Batch(ready, facts, let_through), decided
