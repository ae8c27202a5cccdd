"""Factories: the smallest valid things, with unique names so tests never collide."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.orm import Session

from engine.rules.campaigns import ConsentPurpose, PetitionDef
from engine.rules.signature_rows import SignatureRow
from engine.store import petitions, signatures
from engine.store.models import OutboxMessage


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def petition_def(milestones: tuple[int, ...] = (), slug: str | None = None) -> PetitionDef:
    return PetitionDef(
        slug=slug or unique("petition"),
        title="Interdire la reconnaissance faciale",
        milestones=list(milestones),
        consents={
            "updates": ConsentPurpose(version="v1", wording="Nouvelles de la campagne"),
            "fundraising": ConsentPurpose(version="v2", wording="Appels aux dons"),
        },
    )


def make_petition(session: Session, now: datetime, milestones: tuple[int, ...] = ()) -> str:
    return petitions.upsert(session, petition_def(milestones), now=now).slug


def signer(
    line: int,
    *,
    email: str | None = None,
    domain: str = "example.org",
    signed_at: datetime,
    consents: dict[str, bool] | None = None,
    paper_key: str | None = None,
) -> SignatureRow:
    return SignatureRow(
        line=line,
        email=email if email is not None else (None if paper_key else f"s{line}@{domain}"),
        first_name="Camille",
        last_name="Martin",
        postal_code="75011",
        departement="75",
        region="Île-de-France",
        paper_key=paper_key,
        signed_at=signed_at,
        consents=consents or {},
    )


def record_signers(
    session: Session,
    petition: str | int,
    rows: list[SignatureRow],
    now: datetime,
    *,
    enrol: bool = True,
) -> signatures.Outcome:
    """Record web signatures for a petition given by slug or id."""
    return signatures.record(
        session,
        petition=petitions.facts(session, petition),
        rows=rows,
        now=now,
        source="web",
        enrol=enrol,
    )


def sent_email(
    session: Session,
    supporter_id: int,
    step: str,
    at: datetime,
    *,
    template: str | None = None,
    journey_id: str = "j",
    version: str | None = None,
    enrolment_id: int | None = None,
    due_at: datetime | None = None,
) -> int:
    """The id of an email of `step` (its template named alike unless `template` says) sent
    to the supporter at `at`, due then unless `due_at` says, as the dispatcher leaves it;
    `version` is the template version it was rendered from (clicks resolve its links).
    Without an enrolment, the email's enrolment id is minus the supporter's: one email per
    supporter and step, and never the id of a real enrolment of another test's."""
    row = OutboxMessage(
        enrolment_id=-supporter_id if enrolment_id is None else enrolment_id,
        step_id=step, supporter_id=supporter_id, journey_id=journey_id, journey_version_id=1,
        template=template or step, variant=None, transactional=False, status="sent",
        due_at=due_at or at, created_at=due_at or at, sent_at=at, template_version=version,
        attempts=1,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id
