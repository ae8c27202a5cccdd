"""The declared campaign files into the database (`mobilise sync`, `mobilise demo`), and the
checks across them that no single file can make."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from engine.errors import Invalid, Problem
from engine.rules.campaigns import CampaignDef
from engine.store import journeys, petitions, signatures
from engine.store.journeys import SyncResult
from engine.store.models import Petition


def store(
    session: Session, campaigns: Sequence[CampaignDef], *, now: datetime
) -> tuple[list[Petition], list[SyncResult]]:
    """Petitions (and the milestones their count has reached), then new journey versions;
    the campaigns are validated (`refuse_duplicate_petitions` included). Does not commit."""
    stored = []
    for campaign in campaigns:
        petition = petitions.upsert(session, campaign.petition, now=now)
        signatures.check_milestones(
            session, petition_id=petition.id, count=petition.signature_count, now=now
        )
        stored.append(petition)
    return stored, journeys.sync_journeys(session, campaigns, now)


def refuse_duplicate_petitions(campaigns: Sequence[CampaignDef]) -> None:
    """One campaign file per petition: a slug declared twice is refused."""
    seen: dict[str, str] = {}
    problems = []
    for campaign in campaigns:
        slug = campaign.petition.slug
        if slug in seen:
            problems.append(
                Problem(
                    f"petition '{slug}' is declared by campaigns "
                    f"'{seen[slug]}' and '{campaign.campaign}'"
                )
            )
        seen.setdefault(slug, campaign.campaign)
    if problems:
        raise Invalid(problems[0].message, problems=problems)
