"""Building a seeded database for journey tests: the seed campaign or a campaign a test
declares, signers, gifts."""

from __future__ import annotations

import shutil
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cli.declared import known_templates, load
from engine.declarations import Declared, read
from engine.render.library import TemplateLibrary
from engine.rules.campaign_checks import validate_campaign
from engine.rules.campaigns import CampaignDef
from engine.rules.geo import place_of
from engine.rules.journey_checks import Catalogue
from engine.rules.journeys import Journey
from engine.rules.signature_rows import SignatureRow
from engine.rules.template_variables import GIVEN_TO_EVERYONE
from engine.store import journeys, petitions, virtual
from engine.store.models import Enrolment, OutboxMessage, Supporter
from tests.factories import record_signers

ROOT = Path(__file__).resolve().parents[2]
SLUG = "stop-reconnaissance-faciale"
# The petition of a campaign file a test writes (`declare`).
PETITION = "test-petition"
MILESTONES = (1000, 2000)
CONSENTS = ("updates", "fundraising")


def copy_declared(target: Path) -> None:
    """The repository's declared files (organisation, campaigns, segments, templates and
    the images they show) copied into `target`, a project of a test's own."""
    for folder in ("journeys", "segments", "templates", "static"):
        shutil.copytree(ROOT / folder, target / folder)
    shutil.copy(ROOT / "organisation.yaml", target)


def seed(session: Session, now: datetime) -> tuple[Declared, int]:
    declared = read(ROOT)
    assert declared.problems == []
    return declared, seed_campaign(session, declared.campaigns[0], now)


@cache
def repository() -> Declared:
    """The repository's segments and campaign, checked against its templates (read once)."""
    return load(ROOT)


@cache
def template_variables() -> dict[str, frozenset[str]]:
    library = TemplateLibrary(ROOT / "templates" / "email")
    return {name: library.get(name).variables for name in library.names()}


@cache
def plain_templates() -> tuple[str, ...]:
    """Templates any step can send: no donor variables (ask-additional needs a donor)."""
    found = template_variables()
    return tuple(sorted(t for t, used in found.items() if used <= GIVEN_TO_EVERYONE))


def declare(journey: dict[str, Any], *, zone: str = "Europe/Paris") -> tuple[CampaignDef, Journey]:
    """A campaign file with this one journey (as written in YAML) for PETITION, valid by the
    project's own validation against the repository's segments and templates."""
    campaign = {
        "campaign": "test-campaign",
        "timezone": zone,
        "petition": {
            "slug": PETITION,
            "title": "Une pétition de test",
            "milestones": list(MILESTONES),
            "consents": {c: {"version": "v1", "wording": f"J'accepte : {c}"} for c in CONSENTS},
        },
        "journeys": [journey],
    }
    text = yaml.safe_dump(campaign, allow_unicode=True, sort_keys=False)
    catalogue = Catalogue(
        segments=repository().segments,
        templates=known_templates(ROOT),
        template_variables=template_variables(),
    )
    found, declared, problems = validate_campaign(text, "test-campaign.yaml", catalogue)
    assert problems == [], (problems, text)
    assert found is not None
    return found, declared[0]


def seed_campaign(session: Session, campaign: CampaignDef, now: datetime) -> int:
    """The campaign's petition and journeys, stored at `now`; returns the petition's id."""
    petition = petitions.upsert(session, campaign.petition, now=now)
    journeys.sync_journeys(session, [campaign], now)
    return petition.id


def sign(
    session: Session,
    petition_id: int,
    now: datetime,
    people: dict[str, tuple[bool, bool]],
    *,
    postal_code: str | None = "75011",
    enrol: bool = True,
    signed_at: datetime | None = None,
) -> None:
    """people: local part -> (consents to updates, consents to fundraising). Recorded at
    `now`, signed then unless `signed_at` says otherwise."""
    place = place_of(postal_code) if postal_code else None
    rows = [
        SignatureRow(
            line=i + 1,
            email=f"{name}@example.org",
            first_name=name.title(),
            last_name=None,
            postal_code=postal_code,
            departement=place.departement if place else None,
            region=place.region if place else None,
            paper_key=None,
            signed_at=now if signed_at is None else signed_at,
            consents={"updates": updates, "fundraising": fundraising},
        )
        for i, (name, (updates, fundraising)) in enumerate(people.items())
    ]
    record_signers(session, petition_id, rows, now, enrol=enrol)


def supporter_id(session: Session, name: str) -> int:
    found = session.scalar(select(Supporter.id).where(Supporter.email == f"{name}@example.org"))
    assert found is not None
    return found


def outbox_of(session: Session, name: str) -> list[tuple[str, str, str | None]]:
    rows = session.execute(
        select(OutboxMessage.step_id, OutboxMessage.status, OutboxMessage.reason)
        .where(OutboxMessage.supporter_id == supporter_id(session, name))
        .order_by(OutboxMessage.id)
    ).all()
    return [(s, st, r) for s, st, r in rows]


def enrolment_of(session: Session, name: str) -> tuple[str, str | None, str | None]:
    row = session.execute(
        select(Enrolment.state, Enrolment.step_id, Enrolment.exit_reason).where(
            Enrolment.supporter_id == supporter_id(session, name)
        )
    ).one()
    return row[0], row[1], row[2]


def sent_by(session: Session, now: datetime) -> int:
    """Given a dispatcher on time: every email due by `now` was sent at its due time."""
    return virtual.send_due(session, now=now)
