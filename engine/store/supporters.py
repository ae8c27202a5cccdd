"""Looking up supporters: one by address, for the people who run campaigns (previews);
addresses by id, for what reacts to emails in virtual time (`mobilise demo`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.rules.supporters import normalise_email
from engine.store import idsets, recipients
from engine.store.models import Supporter


def preview_facts(session: Session, email: str, *, now: datetime) -> dict[str, object]:
    """The facts a template may use about this supporter, read as the dispatcher reads them."""
    supporter_id = session.scalar(
        select(Supporter.id).where(Supporter.email == normalise_email(email))
    )
    if supporter_id is None:
        raise NotFound(
            "no supporter with that address", field="supporter", hint="check the address"
        )
    facts = recipients.load(
        session, [supporter_id], purposes=(), version_ids=(), recent_since=None, now=now
    )
    person = facts.people[supporter_id]
    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        **recipients.gift_variables(facts, supporter_id),
    }


def emails(session: Session, ids: Collection[int]) -> dict[int, str]:
    """id -> address of these supporters (those erased have none and are left out)."""
    if not ids:
        return {}
    rows = session.execute(
        select(Supporter.id, Supporter.email).where(idsets.among(session, Supporter.id, ids))
    )
    return {sid: email for sid, email in rows if email is not None}
