"""Building a seeded database for journey tests: the seed campaign, signers, gifts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.geo import place_of
from engine.rules.signers import SignatureRow
from engine.store import journeys, petitions, virtual
from engine.store.files import Declared, read
from engine.store.models import Enrolment, OutboxMessage, Supporter
from tests.factories import record_signers

ROOT = Path(__file__).resolve().parents[2]
SLUG = "stop-reconnaissance-faciale"


def seed(session: Session, now: datetime) -> tuple[Declared, int]:
    declared = read(ROOT)
    assert declared.problems == []
    campaign = declared.campaigns[0]
    petition = petitions.upsert(session, campaign.petition, now=now)
    journeys.sync_journeys(session, declared.campaigns, now)
    return declared, petition.id


def sign(
    session: Session,
    petition_id: int,
    now: datetime,
    people: dict[str, tuple[bool, bool]],
    *,
    postal_code: str = "75011",
    enrol: bool = True,
    signed_at: datetime | None = None,
) -> None:
    """people: local part -> (consents to updates, consents to fundraising). Recorded at
    `now`, signed then unless `signed_at` says otherwise."""
    place = place_of(postal_code)
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
