"""A journey's figures: the store's reads handed to the pure assembly (figures.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.rules.segments import SegmentDef
from engine.stats.figures import JourneyStats, Line, SegmentLine, SegmentStats, journey_stats
from engine.store import counts, funnels, journeys, petitions, recounts
from engine.store.journeys import Loaded
from engine.store.step_figures import StepFigures


def _journey(session: Session, journey_id: str) -> Loaded:
    loaded = journeys.by_id(session, journey_id)
    if loaded is None:
        known = ", ".join(j.journey.id for j in journeys.current(session)) or "none yet"
        raise NotFound(
            f"no journey '{journey_id}'",
            field="journey",
            hint=f"known journeys: {known} (`mobilise sync` loads the declared ones)",
        )
    return loaded


def rebuild(session: Session) -> int:
    """Count the summary rows again from the tables (a repair; `mobilise stats --rebuild`);
    returns the rows written."""
    return recounts.rebuild(session)


def for_journey(session: Session, journey_id: str) -> JourneyStats:
    """Figures of the journey's latest version (its steps, their counts over every
    version). Reads the summary rows, not the events: as fast at ten million as at ten."""
    loaded = _journey(session, journey_id)
    petition = petitions.read(session, loaded.petition)
    gifts, one_off, monthly = funnels.unattributed_gifts(session)
    return journey_stats(
        loaded.journey,
        petition=petition.slug,
        signatures=petition.count,
        milestones=[(m.threshold, m.reached_at) for m in petition.milestones],
        rows=counts.read(session, journey_id),
        people=funnels.people_at_steps(session, journey_id),
        days=funnels.signatures_by_day(session, petition.slug),
        unattributed=StepFigures(gifts=gifts, one_off_cents=one_off, monthly_cents=monthly),
    )


def by_segment(
    session: Session, journey_id: str, declared: Mapping[str, SegmentDef], *, now: datetime
) -> SegmentStats:
    """The journey's emails to each declared segment's people (membership at `now`), in
    the segments' name order: one statement over the per-email rows (funnels.by_segment)."""
    _journey(session, journey_id)
    named = {name: segment.where for name, segment in declared.items()}
    found = funnels.by_segment(session, journey_id, named, now=now, segments=named)
    return SegmentStats(
        journey_id,
        now,
        [
            SegmentLine(name, declared[name].description, Line(found.get(name, StepFigures())))
            for name in sorted(declared)
        ],
    )


def journey_ids(session: Session) -> list[str]:
    return [loaded.journey.id for loaded in journeys.current(session)]
