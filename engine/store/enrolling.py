"""Enrolling supporters set-based: the trigger's people, as the re-entry policy admits them.

One INSERT … SELECT per journey version and pass, whatever the number of people the
trigger selects (engine/store/triggers.py); for a signed or milestone trigger the version's
cursor (engine/store/cursors.py) keeps it to the signatures not read yet, and
`enrol_signer` enrols one signer confirmed after the cursor passed (double opt-in). What
the enrolled then do, step by step, is engine/store/enrolments.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import exists, func, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Subquery

from engine.rules.conditions import Condition
from engine.rules.journeys import MilestoneTrigger
from engine.rules.plan import arrival_due
from engine.store import cursors, restrictions, triggers
from engine.store.inserts import insert_skipping
from engine.store.journeys import Loaded
from engine.store.models import Enrolment, Petition, Supporter

# The enrolments' unique key (models.Enrolment): one walk per supporter, journey and entry.
ENROLMENT_KEY = ("supporter_id", "journey_id", "entry")


def enrol(
    session: Session, loaded: Loaded, *, now: datetime, named: Mapping[str, Condition]
) -> int:
    """Enrol whom the trigger selects at `now` and the re-entry policy admits.

    A signed or milestone trigger reads only the signatures above the version's cursor
    (engine/store/cursors.py), then moves the cursor over the settled ones."""
    trigger = loaded.journey.trigger
    slug = triggers.petition_of(trigger)
    if slug is None:
        return _admit(session, loaded, triggers.candidates(loaded, now=now, named=named), now)
    petition_id = session.scalar(select(Petition.id).where(Petition.slug == slug))
    if petition_id is None:
        return 0
    reached_at = None
    if isinstance(trigger, MilestoneTrigger):
        reached_at = triggers.reached(session, trigger, petition_id, now)
        if reached_at is None:
            return 0  # nobody yet, and the cursor stays where it is
    cursor = cursors.Cursor.open(
        session, loaded.version_id, petition_id, now=now, not_yet=triggers.not_yet(trigger, now)
    )
    found = triggers.signers(petition_id, after=cursor.after, now=now, reached_at=reached_at)
    enrolled = _admit(session, loaded, found, now)
    cursor.close(session)
    return enrolled


def enrol_signer(
    session: Session,
    loaded: Loaded,
    *,
    petition: tuple[int, str],
    supporter_id: int,
    now: datetime,
) -> int:
    """Enrol one signer of `petition` (id, slug) whom the version's signed or milestone trigger
    selects at `now`, wherever its cursor stands: a signature counted before its address
    was confirmed (double opt-in, `count_unconfirmed`) gains `enrol` when it is confirmed,
    and the cursor has usually passed it by then (engine/store/confirmations.py). A
    milestone not yet reached enrols nobody: the cursor waits below it, and the pass reads
    the signature when the milestone comes."""
    trigger = loaded.journey.trigger
    petition_id, slug = petition
    if triggers.petition_of(trigger) != slug:
        return 0
    reached_at = None
    if isinstance(trigger, MilestoneTrigger):
        reached_at = triggers.reached(session, trigger, petition_id, now)
        if reached_at is None:
            return 0
    found = triggers.signers(
        petition_id, after=0, now=now, reached_at=reached_at, supporter_id=supporter_id
    )
    return _admit(session, loaded, found, now)


def _admit(session: Session, loaded: Loaded, source: Subquery, now: datetime) -> int:
    """INSERT … SELECT the (supporter_id, triggered_at) of `source` the policy admits."""
    journey = loaded.journey
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
        # Erased people and paper signers have no address: nothing to walk them through;
        # nor is anyone whose processing is restricted enrolled.
        .where(
            person.email.is_not(None),
            person.erased_at.is_(None),
            ~blocked,
            ~restrictions.restricted(who),
        )
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
    # Passes in several processes may enrol the same new signer at once: the unique
    # (supporter, journey, entry) keeps one, and the others skip it instead of failing.
    return insert_skipping(session, Enrolment, columns, rows, ENROLMENT_KEY)
