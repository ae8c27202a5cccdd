"""The last look before an email leaves: may this claimed row go now, later, or never?

Everything was checked when the row was queued, but hours or days may have passed:
consent withdrawn, an unsubscribe, an erasure, another campaign email sent meanwhile, a
queue drained after quiet hours began. Decided from facts loaded for the whole batch
(engine.store.recipients, by engine/send/last_look.py); no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.rules import optin
from engine.rules.journeys import SendStep
from engine.rules.plan import cap_delay
from engine.rules.windows import next_allowed
from engine.store.claims import Claimed
from engine.store.journeys import Loaded
from engine.store.recipients import Recipients


@dataclass(frozen=True)
class Go:
    pass


@dataclass(frozen=True)
class Never:
    reason: str


@dataclass(frozen=True)
class Later:
    due_at: datetime
    reason: str


Verdict = Go | Never | Later


def consent_purpose(loaded: Loaded, step_id: str) -> str | None:
    step = loaded.journey.by_id().get(step_id)
    if isinstance(step, SendStep) and not step.send.transactional:
        return step.send.consent
    return None


def decide(
    row: Claimed,
    loaded: Loaded | None,
    facts: Recipients,
    *,
    purpose: str | None,
    now: datetime,
    sent_now: list[datetime],
) -> Verdict:
    """`loaded`: the row's journey version, None for a double opt-in confirmation (no
    journey; transactional); `purpose`: the step's consent (`consent_purpose`); `sent_now`:
    this supporter's campaign emails already let through in this batch."""
    person = facts.people.get(row.supporter_id)
    if person is None or person.erased:
        return Never("erased")
    if person.email is None:
        return Never("no-address")
    if person.restricted:
        return Never("restricted")
    suppressed = facts.suppressed.get(row.supporter_id)
    if suppressed is not None:
        return Never(suppressed)  # an opt-out, or a block in force
    pending = optin.pending_of(row.enrolment_id)
    if pending is not None:
        confirmation = facts.confirmations.get(pending)
        if confirmation is None or confirmation.expires_at <= now:
            return Never("confirmation-expired")
        if confirmation.confirmed:
            return Never("confirmed")  # by a link from an earlier email
    if row.transactional:
        return Go()
    assert loaded is not None
    if purpose is not None and not facts.consents.get((row.supporter_id, purpose), False):
        return Never(f"no-consent:{purpose}")
    journey = loaded.journey
    window = next_allowed(
        now, zone=loaded.zone, quiet=journey.quiet_hours, window=journey.send_window
    )
    if window > now:
        return Later(window, "quiet-hours")
    sends = tuple(facts.recent_sends.get(row.supporter_id, ())) + tuple(sent_now)
    deferred = cap_delay(journey, sends, now)
    if deferred is not None:
        return Later(deferred, "frequency-cap")
    return Go()
