"""Petitions and their milestones: declared in files, counted in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.rules.campaigns import PetitionDef
from engine.store.models import Milestone, Petition


@dataclass(frozen=True)
class MilestoneRead:
    threshold: int
    reached_at: datetime | None


@dataclass(frozen=True)
class PetitionRead:
    slug: str
    title: str
    count: int
    milestones: list[MilestoneRead]


def upsert(session: Session, definition: PetitionDef, *, now: datetime) -> Petition:
    """Create or update a petition from its declaration; milestones are only ever added."""
    petition = session.scalar(select(Petition).where(Petition.slug == definition.slug))
    if petition is None:
        petition = Petition(
            slug=definition.slug,
            title=definition.title,
            signature_count=0,
            consent_wordings={},
            created_at=now,
        )
        session.add(petition)
        session.flush()
    petition.title = definition.title
    petition.consent_wordings = {
        purpose: {"version": c.version, "wording": c.wording}
        for purpose, c in definition.consents.items()
    }
    known = set(
        session.scalars(select(Milestone.threshold).where(Milestone.petition_id == petition.id))
    )
    for threshold in definition.milestones:
        if threshold not in known:
            session.add(Milestone(petition_id=petition.id, threshold=threshold))
    session.flush()
    return petition


def get_id(session: Session, slug: str) -> int:
    petition_id = session.scalar(select(Petition.id).where(Petition.slug == slug))
    if petition_id is None:
        raise NotFound(
            f"no petition '{slug}'",
            field="slug",
            hint="declare it in journeys/*.yaml and run `mobilise sync`",
        )
    return petition_id


def consent_versions(session: Session, petition_id: int) -> dict[str, str]:
    """purpose -> wording version, as declared for this petition."""
    wordings = session.scalar(select(Petition.consent_wordings).where(Petition.id == petition_id))
    return {purpose: str(w["version"]) for purpose, w in (wordings or {}).items()}


def read(session: Session, slug: str) -> PetitionRead:
    petition = session.scalar(select(Petition).where(Petition.slug == slug))
    if petition is None:
        get_id(session, slug)
        raise AssertionError("unreachable")
    rows = session.execute(
        select(Milestone.threshold, Milestone.reached_at)
        .where(Milestone.petition_id == petition.id)
        .order_by(Milestone.threshold)
    ).all()
    return PetitionRead(
        slug=petition.slug,
        title=petition.title,
        count=petition.signature_count,
        milestones=[MilestoneRead(t, r) for t, r in rows],
    )
