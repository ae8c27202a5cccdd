"""The right of access: everything stored about one supporter, JSON-ready, one query per
table, and the request logged (`mobilise gdpr export`, `GET /rights/{token}/data`,
`POST /api/supporters/export`). Finding, rectifying and erasing are
engine/store/personal_data.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.store import audit, outbox
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
