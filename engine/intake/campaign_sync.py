"""The declared campaign files into the database (`mobilise demo`; `mobilise sync` does the
same from the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from engine.progress import QUIET, Progress
from engine.rules.campaigns import CampaignDef
from engine.store import journeys, milestones, petitions
from engine.store.journeys import SyncResult
from engine.store.models import Petition


def store(
    session: Session,
    campaigns: Sequence[CampaignDef],
    *,
    now: datetime,
    progress: Progress = QUIET,
) -> tuple[list[Petition], list[SyncResult]]:
    """Petitions (and the milestones their count has reached), then new journey versions;
    the caller has validated the campaigns. Does not commit."""
    items = sum(1 + len(c.journeys) for c in campaigns)
    progress.phase("Storing petitions, journeys", items)
    stored = []
    for campaign in campaigns:
        petition = petitions.upsert(session, campaign.petition, now=now)
        milestones.check(session, petition_id=petition.id, count=petition.signature_count, now=now)
        stored.append(petition)
        progress.advance(1)
    return stored, journeys.sync_journeys(session, campaigns, now, progress=progress)
