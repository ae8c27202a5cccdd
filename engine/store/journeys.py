"""Journey versions: `sync` stores a new one when a definition's content hash changes.

Enrolled supporters stay on the version they entered; only new enrolments take the latest.
A new version that removes a step someone is on is refused, unless the journey declares
`migrate: {old-step: new-step}`; those supporters then move to the new version at the new
step (their old step's email may be gone: keeping them would strand them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.errors import Invalid, Problem
from engine.progress import QUIET, Progress
from engine.rules.campaigns import CampaignDef
from engine.rules.journeys import Journey
from engine.rules.plan import arrival_due
from engine.store.models import Enrolment, JourneyVersion


@dataclass(frozen=True)
class Loaded:
    """A stored version, parsed: what the passes run."""

    version_id: int
    version: int
    journey: Journey
    petition: str
    zone: str


@dataclass(frozen=True)
class SyncResult:
    journey_id: str
    version: int
    created: bool
    migrated: int = 0


def _latest(session: Session, journey_id: str) -> JourneyVersion | None:
    return session.scalar(
        select(JourneyVersion)
        .where(JourneyVersion.journey_id == journey_id)
        .order_by(JourneyVersion.version.desc())
        .limit(1)
    )


def _stranded(session: Session, journey: Journey) -> list[tuple[int, int, str, int]]:
    """(version id, version, step, count) of active enrolments on steps the journey lacks."""
    rows = session.execute(
        select(
            Enrolment.journey_version_id,
            JourneyVersion.version,
            Enrolment.step_id,
            func.count(),
        )
        .join(JourneyVersion, JourneyVersion.id == Enrolment.journey_version_id)
        .where(Enrolment.journey_id == journey.id, Enrolment.state == "active")
        .group_by(Enrolment.journey_version_id, JourneyVersion.version, Enrolment.step_id)
    ).all()
    steps = journey.by_id()
    return [(vid, v, step, n) for vid, v, step, n in rows if step is not None and step not in steps]


def sync_one(
    session: Session, journey: Journey, *, campaign: CampaignDef, now: datetime
) -> SyncResult:
    digest = journey.content_hash()
    latest = _latest(session, journey.id)
    if latest is not None and latest.content_hash == digest:
        return SyncResult(journey.id, latest.version, created=False)
    stranded = _stranded(session, journey)
    unmapped = [s for s in stranded if s[2] not in journey.migrate]
    if unmapped:
        problems = [
            Problem(
                f"journey '{journey.id}': {count} supporter(s) are on step '{step}' of version "
                f"{version}, which the new definition removes",
                field=f"{journey.id}.migrate",
                hint=f"add `migrate: {{{step}: <step id>}}` to the journey to move them",
            )
            for _, version, step, count in unmapped
        ]
        raise Invalid(problems[0].message, hint=problems[0].hint, problems=problems)
    version = JourneyVersion(
        journey_id=journey.id,
        version=(latest.version + 1) if latest is not None else 1,
        campaign=campaign.campaign,
        petition_slug=campaign.petition.slug,
        timezone=campaign.timezone,
        definition=journey.as_json(),
        content_hash=digest,
        created_at=now,
    )
    session.add(version)
    session.flush()
    moved = 0
    for version_id, _, step, _count in stranded:
        target = journey.migrate[step]
        moved += (
            session.connection()
            .execute(
                update(Enrolment)
                .where(
                    Enrolment.journey_version_id == version_id,
                    Enrolment.state == "active",
                    Enrolment.step_id == step,
                )
                .values(
                    journey_version_id=version.id,
                    step_id=target,
                    step_at=now,
                    due_at=arrival_due(journey, target, now),
                )
            )
            .rowcount
        )
    return SyncResult(journey.id, version.version, created=True, migrated=moved)


def sync_journeys(
    session: Session,
    campaigns: Sequence[CampaignDef],
    now: datetime,
    *,
    progress: Progress = QUIET,
) -> list[SyncResult]:
    """Store every declared journey (already validated) as a new version when it changed.

    Raises Invalid, and changes nothing the caller keeps if it rolls back, when a change
    would strand enrolled supporters."""
    results = []
    for campaign in campaigns:
        for raw in campaign.journeys:
            journey = Journey.model_validate(raw)
            results.append(sync_one(session, journey, campaign=campaign, now=now))
            progress.advance(1)
    return results


def _loaded(row: JourneyVersion) -> Loaded:
    return Loaded(
        version_id=row.id,
        version=row.version,
        journey=Journey.model_validate(row.definition),
        petition=row.petition_slug,
        zone=row.timezone,
    )


def current(session: Session) -> list[Loaded]:
    """The latest version of every journey: the ones that enrol."""
    newest = (
        select(JourneyVersion.journey_id, func.max(JourneyVersion.version).label("v"))
        .group_by(JourneyVersion.journey_id)
        .subquery()
    )
    rows = session.scalars(
        select(JourneyVersion)
        .join(
            newest,
            (newest.c.journey_id == JourneyVersion.journey_id)
            & (newest.c.v == JourneyVersion.version),
        )
        .order_by(JourneyVersion.journey_id)
    )
    return [_loaded(row) for row in rows]


def running(session: Session) -> list[Loaded]:
    """Every version someone is still walking through, plus the latest ones."""
    # One probe of the due index per stored version (a few), not a walk over every enrolment.
    # A scalar subquery with LIMIT: PostgreSQL turns an EXISTS into a semi-join, which it
    # may run as a hash over every active enrolment.
    walked = (
        select(Enrolment.id)
        .where(Enrolment.journey_version_id == JourneyVersion.id, Enrolment.state == "active")
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )
    rows = session.scalars(
        select(JourneyVersion)
        .where(walked)
        .order_by(JourneyVersion.journey_id, JourneyVersion.version)
    )
    found = {row.id: _loaded(row) for row in rows}
    for loaded in current(session):
        found.setdefault(loaded.version_id, loaded)
    return sorted(found.values(), key=lambda v: (v.journey.id, v.version))


def by_id(session: Session, journey_id: str) -> Loaded | None:
    latest = _latest(session, journey_id)
    return _loaded(latest) if latest is not None else None


def version_by_pk(session: Session, version_id: int) -> Loaded:
    row = session.get(JourneyVersion, version_id)
    assert row is not None
    return _loaded(row)
