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
class PetitionFacts:
    """What recording a signature needs, read once per batch."""

    id: int
    slug: str
    consent_versions: dict[str, str]  # purpose -> wording version
    double_opt_in: bool = False
    count_unconfirmed: bool = False


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
    # (purpose, wording) as declared: what a signing form asks, one box each.
    consents: tuple[tuple[str, str], ...] = ()
    # A signature waits for its confirmation link (the thank-you page says so).
    double_opt_in: bool = False

    @property
    def next_milestone(self) -> int | None:
        """The first milestone above the count; the last one once all are passed."""
        thresholds = [m.threshold for m in self.milestones]
        return next((t for t in thresholds if t > self.count), max(thresholds, default=None))


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
    petition.double_opt_in = definition.double_opt_in
    petition.count_unconfirmed = definition.count_unconfirmed
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


def _not_found(slug: str) -> NotFound:
    return NotFound(
        f"no petition '{slug}'",
        field="slug",
        hint="declare it in journeys/*.yaml and run `mobilise sync`",
    )


def facts(session: Session, slug: str | int) -> PetitionFacts:
    """One query: the petition's id, slug, consent versions and double opt-in (by slug or
    id). Milestones are not read here: every batch checks them in its own statements."""
    row = session.execute(
        select(
            Petition.id,
            Petition.slug,
            Petition.consent_wordings,
            Petition.double_opt_in,
            Petition.count_unconfirmed,
        ).where(Petition.id == slug if isinstance(slug, int) else Petition.slug == slug)
    ).one_or_none()
    if row is None:
        raise _not_found(str(slug))
    petition_id, found_slug, wordings, double_opt_in, count_unconfirmed = row
    versions = {purpose: str(w["version"]) for purpose, w in (wordings or {}).items()}
    return PetitionFacts(
        petition_id, found_slug, versions, bool(double_opt_in), bool(count_unconfirmed)
    )


def read(session: Session, slug: str) -> PetitionRead:
    petition = session.scalar(select(Petition).where(Petition.slug == slug))
    if petition is None:
        raise _not_found(slug)
    return _read(session, petition)


def read_all(session: Session) -> list[PetitionRead]:
    """Every petition with its milestones, by slug (a handful: one query each is fine)."""
    return [
        _read(session, petition)
        for petition in session.scalars(select(Petition).order_by(Petition.slug))
    ]


def _read(session: Session, petition: Petition) -> PetitionRead:
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
        consents=tuple(
            (purpose, str(c["wording"])) for purpose, c in (petition.consent_wordings or {}).items()
        ),
        double_opt_in=petition.double_opt_in,
    )
