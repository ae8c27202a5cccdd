"""Double opt-in: web signatures waiting for their address to be confirmed.

A petition declared with `double_opt_in` records a web signature as a pending signature
(`request`): the supporter row is made as a signature makes it, the form's consent answers
wait in the pending row, and the `confirm` email is queued in the outbox (engine/rules/
optin.py). Nothing else happens until the signer confirms (`confirm`, from the button of
`/confirm/{token}`): then the signature goes through the one signing pipeline
(engine/store/signatures.py) with its consents, dated at the confirmation, and journeys
enrol the signer as they enrol anyone.

With `count_unconfirmed` the signature is also recorded at once, without consents and
without `enrol`, so that it counts towards the total and the milestones before it is
confirmed; confirming then grants the consents, sets `enrol` and enrols the signer
(`enrolling.enrol_signer`: the pass's cursor has usually passed the signature by then).

A pending signature expires (`expires_at`, MOBILISE_CONFIRM_DAYS after the request): its
link stops working, and the retention pass deletes it (engine/store/retention.py), with
the supporter it made if they have nothing else. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.rules import optin
from engine.rules.signature_rows import SignatureRow
from engine.store import enrolling, journeys, petitions, signatures
from engine.store.inserts import insert_skipping
from engine.store.models import (
    OutboxMessage,
    PendingSignature,
    Petition,
    Signature,
    Supporter,
)
from engine.store.outbox import KEY_COLUMNS
from engine.store.petitions import PetitionFacts


@dataclass(frozen=True)
class Pending:
    """What the confirmation page shows of a pending signature."""

    id: int
    petition_title: str
    expires_at: datetime
    confirmed_at: datetime | None


Confirmed = Literal["confirmed", "already"]


def sign(
    session: Session,
    *,
    petition: PetitionFacts,
    rows: Sequence[SignatureRow],
    now: datetime,
    expires_at: datetime,
) -> int:
    """A batch of web signatures of a double opt-in petition: pending (`request`), and with
    `count_unconfirmed` recorded at once too, without consents nor `enrol`, so that they
    count. The number of new pending signatures."""
    asked = request(session, petition=petition, rows=rows, now=now, expires_at=expires_at)
    if petition.count_unconfirmed:
        signatures.record(
            session,
            petition=petition,
            rows=[row._replace(consents={}) for row in rows],
            now=now,
            source="web",
            enrol=False,
        )
    return asked


def request(
    session: Session,
    *,
    petition: PetitionFacts,
    rows: Sequence[SignatureRow],
    now: datetime,
    expires_at: datetime,
) -> int:
    """Record a batch of web signatures of a double opt-in petition as pending, and queue
    a confirmation email for each new one; the number of new pending signatures.

    An address that has signed the petition already, or whose signature waits already, is
    not asked again (the answer to the form is the same: nobody learns who signed)."""
    emailed = sorted((r for r in rows if r.email is not None), key=lambda r: r.email or "")
    if not emailed:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # As a signature makes them (engine/store/signatures.py): in email order, so that
    # concurrent batches lock new keys in one order; last contact, the request.
    session.execute(
        insert(Supporter)
        .values(
            [
                {
                    "email": r.email,
                    "first_name": r.first_name,
                    "last_name": r.last_name,
                    "postal_code": r.postal_code,
                    "departement": r.departement,
                    "region": r.region,
                    "locale": "fr",
                    "created_at": now,
                    "last_contact_at": now,
                }
                for r in emailed
            ]
        )
        .on_conflict_do_nothing(index_elements=["email"])
    )
    ids: dict[str | None, int] = {
        email: supporter_id
        for email, supporter_id in session.execute(
            select(Supporter.email, Supporter.id).where(
                Supporter.email.in_([r.email for r in emailed])
            )
        )
    }
    signed = set(
        session.scalars(
            select(Signature.supporter_id).where(
                Signature.petition_id == petition.id, Signature.supporter_id.in_(ids.values())
            )
        )
    )
    wanted = [
        {
            "petition_id": petition.id,
            "supporter_id": ids[r.email],
            "consents": r.consents,
            "requested_at": now,
            "expires_at": expires_at,
        }
        for r in emailed
        if r.email in ids and ids[r.email] not in signed
    ]
    if not wanted:
        return 0
    added = (
        session.connection()
        .execute(
            insert(PendingSignature)
            .values(wanted)
            .on_conflict_do_nothing(index_elements=["petition_id", "supporter_id"])
            .execution_options(preserve_rowcount=True)
        )
        .rowcount
    )
    # The SQL twin of optin.outbox_key: (-pending id, the step).
    new = select(
        -PendingSignature.id,
        literal(optin.STEP),
        PendingSignature.supporter_id,
        literal(optin.JOURNEY),
        literal(0),
        literal(optin.TEMPLATE),
        true(),
        literal("queued"),
        literal(now, OutboxMessage.due_at.type),
        literal(now, OutboxMessage.created_at.type),
    ).where(
        # This batch's: the expiry index, then the petition.
        PendingSignature.expires_at == expires_at,
        PendingSignature.petition_id == petition.id,
        PendingSignature.requested_at == now,
    )
    columns = [
        "enrolment_id",
        "step_id",
        "supporter_id",
        "journey_id",
        "journey_version_id",
        "template",
        "transactional",
        "status",
        "due_at",
        "created_at",
    ]
    insert_skipping(session, OutboxMessage, columns, new, KEY_COLUMNS)
    return int(added)


def _live(pending_id: int, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The pending signature, unless expired at `now` (expired ones wait for the purge)."""
    return PendingSignature.id == pending_id, PendingSignature.expires_at > now


def read(session: Session, pending_id: int, *, now: datetime) -> Pending | None:
    """The pending signature, unless unknown or expired at `now`."""
    row = session.execute(
        select(
            PendingSignature.id,
            Petition.title,
            PendingSignature.expires_at,
            PendingSignature.confirmed_at,
        )
        .join(Petition, Petition.id == PendingSignature.petition_id)
        .where(*_live(pending_id, now))
    ).one_or_none()
    return None if row is None else Pending(*row)


def confirm(session: Session, pending_id: int, *, now: datetime) -> Confirmed | None:
    """Confirm the pending signature: record it (or, counted already, enrol it) with its
    consents. None when unknown or expired; "already" the second time."""
    row = session.execute(
        select(
            PendingSignature.petition_id,
            PendingSignature.consents,
            PendingSignature.confirmed_at,
            Supporter.id,
            Supporter.email,
            Supporter.first_name,
            Supporter.last_name,
            Supporter.postal_code,
            Supporter.departement,
            Supporter.region,
        )
        .join(Supporter, Supporter.id == PendingSignature.supporter_id)
        .where(*_live(pending_id, now))
    ).one_or_none()
    if row is None:
        return None
    petition_id, consents, confirmed_at, supporter_id, email, *names_and_place = row
    # The row's own guard: two clicks racing confirm once.
    claimed = (
        session.connection()
        .execute(
            update(PendingSignature)
            .where(PendingSignature.id == pending_id, PendingSignature.confirmed_at.is_(None))
            .values(confirmed_at=now)
            .execution_options(preserve_rowcount=True)
        )
        .rowcount
    )
    if confirmed_at is not None or not claimed:
        return "already"
    if email is None:  # erased meanwhile: nothing left to record
        return "confirmed"
    facts = petitions.facts(session, petition_id)
    first_name, last_name, postal_code, departement, region = names_and_place
    signer = SignatureRow(
        1,
        email,
        first_name,
        last_name,
        postal_code,
        departement,
        region,
        None,
        now,
        {p: bool(g) for p, g in (consents or {}).items() if p in facts.consent_versions},
    )
    signatures.record(session, petition=facts, rows=[signer], now=now, source="web", enrol=True)
    if facts.count_unconfirmed:
        session.execute(
            update(Signature)
            .where(Signature.petition_id == petition_id, Signature.supporter_id == supporter_id)
            .values(enrol=True)
        )
        for loaded in journeys.current(session):
            enrolling.enrol_signer(
                session,
                loaded,
                petition=(petition_id, facts.slug),
                supporter_id=supporter_id,
                now=now,
            )
    return "confirmed"
