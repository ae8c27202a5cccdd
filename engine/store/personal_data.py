"""A supporter's personal data: found by address, rectified, erased (exported whole:
engine/store/data_export.py).

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
    Enrolment,
    Event,
    OutboxMessage,
    PendingSignature,
    Supporter,
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
