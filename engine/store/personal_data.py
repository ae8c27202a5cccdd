"""A supporter's personal data: found by address, exported whole, rectified, erased.

Erasure works on a set of supporters (one, for a request; many, for the retention pass) with
a handful of UPDATE … WHERE statements. It removes what identifies a person and keeps the
rows that counts are made of: a signature still counts towards its petition and milestones,
an email sent or a gift still counts in the funnels, all tied to an anonymous supporter id
(docs/privacy.md says what is kept and why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from engine.config import Secret
from engine.errors import Invalid, NotFound
from engine.progress import QUIET, Progress
from engine.rules.rights import Rectification
from engine.rules.supporters import email_hashes, normalise_email
from engine.store import audit, outbox, suppressions
from engine.store.models import (
    Click,
    Consent,
    Donation,
    Enrolment,
    Event,
    Link,
    OutboxMessage,
    PendingSignature,
    Petition,
    Signature,
    Supporter,
    Suppression,
)


def find(session: Session, email: str) -> int:
    """The supporter with this address (normalised as intake does); NotFound otherwise."""
    address = normalise_email(email)
    supporter_id = (
        session.scalar(select(Supporter.id).where(Supporter.email == address)) if address else None
    )
    if supporter_id is None:
        raise NotFound(
            "no supporter with that address",
            field="email",
            hint="check the spelling; an erased supporter has no address any more",
        )
    return supporter_id


def find_erased_too(session: Session, email: str, *, secret: Secret) -> int:
    """`find`, and for an address erased at its owner's request, the erased supporter's
    id, by the keyed hash of the address its erasure kept (reading their audit log
    reveals nothing the asker did not give). NotFound otherwise."""
    try:
        return find(session, email)
    except NotFound:
        address = normalise_email(email)
        erased = (
            suppressions.erased_supporter(session, email_hashes(address, secret))
            if address
            else None
        )
        if erased is None:
            raise
        return erased


def owner_of_message(session: Session, message_id: int) -> tuple[int, bool] | None:
    """(supporter id, erased?) of the supporter an email went to; None for no such email."""
    row = session.execute(
        select(Supporter.id, Supporter.erased_at.is_not(None))
        .join(OutboxMessage, OutboxMessage.supporter_id == Supporter.id)
        .where(OutboxMessage.id == message_id)
    ).first()
    return None if row is None else (row[0], bool(row[1]))


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(session: Session, query: Select[*tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {key: _plain(value) for key, value in row.items()}
        for row in session.execute(query).mappings()
    ]


def export(session: Session, supporter_id: int, *, actor: str, now: datetime) -> dict[str, Any]:
    """Everything stored about one supporter, JSON-ready (one query per table); logged."""
    person = session.get(Supporter, supporter_id)
    if person is None:
        raise NotFound("no such supporter", field="supporter")
    audit.record(session, actor=actor, action="export", now=now, supporter_id=supporter_id)
    wordings = _wordings(session)
    consents = _rows(
        session,
        select(
            Consent.purpose,
            Consent.granted,
            Consent.wording_version,
            Consent.source,
            Consent.recorded_at,
        )
        .where(Consent.supporter_id == supporter_id)
        .order_by(Consent.id),
    )
    for consent in consents:
        consent["wording"] = wordings.get((consent["purpose"], consent["wording_version"]))
    mine = outbox.of_supporter(supporter_id)
    return {
        "supporter": {
            key: _plain(getattr(person, key))
            for key in (
                "id",
                "email",
                "first_name",
                "last_name",
                "postal_code",
                "departement",
                "region",
                "locale",
                "created_at",
                "last_contact_at",
                "restricted_at",
                "erased_at",
            )
        },
        "consents": consents,
        "signatures": _rows(
            session,
            select(
                Petition.slug.label("petition"),
                Petition.title,
                Signature.seq,
                Signature.signed_at,
                Signature.recorded_at,
                Signature.source,
            )
            .join(Petition, Petition.id == Signature.petition_id)
            .where(Signature.supporter_id == supporter_id)
            .order_by(Signature.signed_at),
        ),
        # Double opt-in: signatures asked for and not confirmed yet, or confirmed lately.
        "pending_signatures": _rows(
            session,
            select(
                Petition.slug.label("petition"),
                PendingSignature.consents,
                PendingSignature.requested_at,
                PendingSignature.expires_at,
                PendingSignature.confirmed_at,
            )
            .join(Petition, Petition.id == PendingSignature.petition_id)
            .where(PendingSignature.supporter_id == supporter_id)
            .order_by(PendingSignature.id),
        ),
        "emails": _rows(
            session,
            select(
                OutboxMessage.id,
                OutboxMessage.journey_id.label("journey"),
                OutboxMessage.step_id.label("step"),
                OutboxMessage.template,
                OutboxMessage.variant,
                OutboxMessage.status,
                OutboxMessage.reason,
                OutboxMessage.created_at,
                OutboxMessage.due_at,
                OutboxMessage.sent_at,
                OutboxMessage.delivery,
                OutboxMessage.delivery_at,
            )
            .where(mine)
            .order_by(OutboxMessage.due_at, OutboxMessage.id),
        ),
        "clicks": _rows(
            session,
            select(
                Click.message_id,
                Click.link_position,
                Link.url,
                Click.clicked_at,
                Click.automated,
            )
            .join(OutboxMessage, OutboxMessage.id == Click.message_id)
            .outerjoin(
                Link,
                (Link.template == OutboxMessage.template)
                & (Link.version == OutboxMessage.template_version)
                & (Link.position == Click.link_position),
            )
            .where(Click.supporter_id == supporter_id)
            .order_by(Click.clicked_at),
        ),
        "gifts": _rows(
            session,
            select(
                Donation.amount_cents,
                Donation.currency,
                Donation.frequency,
                Donation.donated_at,
                Donation.external_id,
                Donation.subscription_id,
                Donation.message_id,
                Donation.refunded_at,
                Donation.cancelled_at,
            )
            .where(Donation.supporter_id == supporter_id)
            .order_by(Donation.donated_at),
        ),
        "journeys": _rows(
            session,
            select(
                Enrolment.journey_id.label("journey"),
                Enrolment.entry,
                Enrolment.state,
                Enrolment.step_id.label("step"),
                Enrolment.variant,
                Enrolment.entered_at,
                Enrolment.step_at,
                Enrolment.due_at,
                Enrolment.exited_at,
                Enrolment.exit_reason,
            )
            .where(Enrolment.supporter_id == supporter_id)
            .order_by(Enrolment.entered_at),
        ),
        "suppressions": _rows(
            session,
            select(Suppression.reason, Suppression.created_at, Suppression.expires_at)
            .where(Suppression.supporter_id == supporter_id)
            .order_by(Suppression.id),
        ),
        "events": _rows(
            session,
            select(Event.kind, Event.occurred_at, Event.payload)
            .where(Event.supporter_id == supporter_id)
            .order_by(Event.occurred_at, Event.id),
        ),
        "requests": [
            {"action": e.action, "at": e.at.isoformat(), "by": e.actor}
            for e in audit.entries(session, supporter_id=supporter_id)
        ],
    }


def _wordings(session: Session) -> dict[tuple[str, str], str]:
    """(purpose, version) -> the wording the signer was shown, as the petitions declare it."""
    found: dict[tuple[str, str], str] = {}
    for declared in session.scalars(select(Petition.consent_wordings)):
        for purpose, wording in (declared or {}).items():
            found[(purpose, str(wording.get("version")))] = str(wording.get("wording"))
    return found


def rectify(
    session: Session, supporter_id: int, change: Rectification, *, actor: str, now: datetime
) -> None:
    """Set the corrected columns; Invalid if the new address is another supporter's. The
    log names the fields, never their values."""
    values: Mapping[str, str | None] = change.values
    email = values.get("email")
    if email is not None:
        taken = session.scalar(
            select(Supporter.id).where(Supporter.email == email, Supporter.id != supporter_id)
        )
        if taken is not None:
            raise Invalid(
                "another supporter has that address",
                field="email",
                hint="erase one of the two, then rectify the other",
            )
    session.execute(
        update(Supporter)
        .where(Supporter.id == supporter_id, Supporter.erased_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=actor,
        action="rectify",
        now=now,
        supporter_id=supporter_id,
        detail={"fields": change.fields},
    )


def one(supporter_id: int) -> Select[int]:
    """The one-supporter population `erase` takes."""
    return select(Supporter.id).where(Supporter.id == supporter_id)


@dataclass
class Erased:
    supporters: int = 0
    # The emails they were sent: the file transport's `.eml` copies are named by these.
    message_ids: list[int] = field(default_factory=list)


def erase(
    session: Session,
    supporters: Select[Any],
    *,
    now: datetime,
    actor: str,
    action: str = "erase",
    secret: Secret | None = None,
    progress: Progress = QUIET,
) -> Erased:
    """Anonymise the supporters that `supporters` (a one-column SELECT of ids) yields, unless
    erased already, and log it. With `secret`, at their request: the keyed hash of each
    address joins the suppressions for good (an import will not bring it back). Without,
    for retention: nothing is kept of the address. `progress` counts supporters, in chunks."""
    chosen = supporters.correlate(None)  # its own `supporters`, not this statement's
    ids = sorted(
        session.scalars(
            select(Supporter.id).where(Supporter.id.in_(chosen), Supporter.erased_at.is_(None))
        )
    )
    done = Erased()
    if not ids:
        return done
    progress.phase("Anonymising supporters", len(ids))
    # Chunked: a retention pass may erase many, and SQLite caps bound parameters.
    for start in range(0, len(ids), 5_000):
        chunk = ids[start : start + 5_000]
        done.message_ids += _erase_chunk(session, chunk, now=now, secret=secret)
        audit.record_each(
            session,
            actor=actor,
            action=action,
            now=now,
            supporters=select(Supporter.id).where(Supporter.id.in_(chunk)),
        )
        progress.advance(len(chunk))
    done.supporters = len(ids)
    return done


def _erase_chunk(
    session: Session, ids: list[int], *, now: datetime, secret: Secret | None
) -> list[int]:
    connection = session.connection()
    if secret is not None:
        addresses = session.execute(
            select(Supporter.id, Supporter.email).where(
                Supporter.id.in_(ids), Supporter.email.is_not(None)
            )
        ).all()
        suppressions.add_many(
            session,
            [
                suppressions.SuppressionCreate(suppressions.ERASED, now, supporter_id=sid, email=e)
                for sid, e in addresses
            ],
            now=now,
            secret=secret,
        )
    mine = outbox.of_supporters(select(Supporter.id).where(Supporter.id.in_(ids)))
    messages = list(
        session.scalars(select(OutboxMessage.id).where(mine, OutboxMessage.sent_at.is_not(None)))
    )
    # Nothing more is sent: waiting emails are dropped, journeys left, signatures waiting
    # for a confirmation forgotten.
    connection.execute(
        update(OutboxMessage)
        .where(mine, OutboxMessage.status.in_(("queued", "held")))
        .values(status="suppressed", reason="erased")
    )
    connection.execute(delete(PendingSignature).where(PendingSignature.supporter_id.in_(ids)))
    connection.execute(
        update(Enrolment)
        .where(Enrolment.supporter_id.in_(ids), Enrolment.state == "active")
        .values(state="exited", exit_reason="erased", exited_at=now, due_at=None)
    )
    # Event payloads may hold what a provider said about the address (a bounce's text).
    connection.execute(update(Event).where(Event.supporter_id.in_(ids)).values(payload={}))
    connection.execute(update(Click).where(Click.supporter_id.in_(ids)).values(supporter_id=None))
    connection.execute(
        update(Supporter)
        .where(Supporter.id.in_(ids))
        .values(
            email=None,
            first_name=None,
            last_name=None,
            postal_code=None,
            departement=None,
            last_contact_at=None,
            erased_at=now,
        )
    )
    return messages
