"""What the dispatcher must know about a claimed batch's recipients, read set-based.

One query per kind of fact for the whole batch (supporters, latest consents, suppressions,
last gifts, recent sends, petitions), never one per supporter: a batch is 1,000 rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, any_, bindparam, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from engine.store import donations, restrictions, suppressions
from engine.store.idsets import among_bound, bound
from engine.store.models import (
    Consent,
    Enrolment,
    JourneyVersion,
    Milestone,
    OutboxMessage,
    PendingSignature,
    Petition,
    Supporter,
    Suppression,
)
from engine.store.types import UTCDateTime


class LastGift(NamedTuple):
    amount: Decimal  # euros; for a monthly gift, the monthly amount
    monthly: bool  # a monthly gift not cancelled


class Person(NamedTuple):  # a tuple: one is built per recipient
    id: int
    email: str | None
    first_name: str
    last_name: str
    restricted: bool
    erased: bool


@dataclass(frozen=True)
class PetitionFacts:
    title: str
    signature_count: int
    milestone: int | None


@dataclass(frozen=True)
class Confirmation:
    """A double opt-in email's pending signature (engine/store/confirmations.py)."""

    petition: PetitionFacts
    expires_at: datetime
    confirmed: bool


@dataclass
class Recipients:
    people: dict[int, Person] = field(default_factory=dict)
    # (supporter, purpose) -> granted, from the latest row of each pair.
    consents: dict[tuple[int, str], bool] = field(default_factory=dict)
    # supporter -> why their emails are suppressed now (engine.store.suppressions).
    suppressed: dict[int, str] = field(default_factory=dict)
    # supporter -> their last gift, one-off or monthly (engine.store.donations.latest).
    last_gift: dict[int, LastGift] = field(default_factory=dict)
    # supporter -> send times of campaign emails sent recently (frequency cap).
    recent_sends: dict[int, list[datetime]] = field(default_factory=dict)
    # journey version id -> its petition's facts.
    petitions: dict[int, PetitionFacts] = field(default_factory=dict)
    # pending signature id -> what its confirmation email needs (engine.rules.optin).
    confirmations: dict[int, Confirmation] = field(default_factory=dict)


class _Reads(NamedTuple):
    """The statements of `load`, built once per dialect and set of purposes: the batch's
    ids, `now` and `since` are parameters. Building them (aliases, correlated subqueries,
    column collections) cost more Python than running them: 60 % of a batch's look."""

    people: Executable
    consents: Executable | None
    suppressed: Executable
    gifts: Executable
    recent: Executable


_NOW = bindparam("now", type_=UTCDateTime())
_SINCE = bindparam("since", type_=UTCDateTime())


@cache
def _reads(dialect: str, purposes: tuple[str, ...]) -> _Reads:
    def of_batch(column: Any) -> ColumnElement[bool]:
        return among_bound(dialect, column, "ids")

    consents = None
    if purposes:
        # The latest row per (supporter, purpose) is in force: max(id) from the covering
        # index (supporter_id, purpose, id), then the rows themselves.
        latest = (
            select(func.max(Consent.id))
            .where(of_batch(Consent.supporter_id), Consent.purpose.in_(purposes))
            .group_by(Consent.supporter_id, Consent.purpose)
        )
        consents = select(Consent.supporter_id, Consent.purpose, Consent.granted).where(
            Consent.id.in_(latest)
        )
    # Every email of the batch's supporters is read through indexes (their enrolments by
    # the supporter-first key, each one's emails by the outbox's enrolment-first key), and
    # the recent campaign ones are picked in the SELECT list, not the WHERE: with
    # `status = 'sent'` in the WHERE, SQLite started from the (status, due) index and read
    # every email ever sent for each batch (a dispatch that slowed down as the campaign
    # grew). On PostgreSQL the enrolment ids are an ARRAY probed in the outbox's key, as in
    # `outbox.cap_deferrals`.
    theirs = select(Enrolment.id).where(of_batch(Enrolment.supporter_id))
    of_theirs = (
        OutboxMessage.enrolment_id == any_(func.ARRAY(theirs.scalar_subquery()))
        if dialect == "postgresql"
        else OutboxMessage.enrolment_id.in_(theirs)
    )
    counted = case(
        (
            and_(
                OutboxMessage.status == "sent",
                OutboxMessage.transactional.is_(False),
                OutboxMessage.sent_at > _SINCE,
            ),
            OutboxMessage.sent_at,
        )
    )
    return _Reads(
        people=select(
            Supporter.id,
            Supporter.email,
            Supporter.first_name,
            Supporter.last_name,
            # Booleans from SQL: no timestamp to parse per row. The journey pass's rule.
            restrictions.restricted(Supporter.id),
            Supporter.erased_at.is_not(None),
        ).where(of_batch(Supporter.id)),
        consents=consents,
        suppressed=suppressions.in_force_among(of_batch(Suppression.supporter_id), _NOW),
        # Driven from the batch's supporters (primary key), each gift column one probe of
        # the donations index: a join to donations on the last gift's id lets PostgreSQL
        # hash the whole donations table instead.
        gifts=select(
            Supporter.id,
            donations.latest(Supporter.id, _NOW, "amount_cents"),
            donations.latest(Supporter.id, _NOW, "monthly"),
        ).where(of_batch(Supporter.id)),
        recent=select(OutboxMessage.supporter_id, counted).where(of_theirs),
    )


def statements_built() -> int:
    """How many sets of `load`'s statements this process has built (one per database
    kind and set of purposes)."""
    return _reads.cache_info().currsize


def load(
    session: Session,
    supporter_ids: Collection[int],
    *,
    purposes: Collection[str],
    version_ids: Collection[int],
    recent_since: datetime | None,
    now: datetime,
    pending_ids: Collection[int] = (),
) -> Recipients:
    ids = sorted(set(supporter_ids))
    found = Recipients()
    if not ids:
        return found
    dialect = session.get_bind().dialect.name
    reads = _reads(dialect, tuple(sorted(purposes)))
    params = {"ids": bound(dialect, ids), "now": now}
    for row in session.execute(reads.people, params):
        found.people[row[0]] = Person(
            row[0], row[1], row[2] or "", row[3] or "", bool(row[4]), bool(row[5])
        )
    if reads.consents is not None:
        for supporter_id, purpose, granted in session.execute(reads.consents, params):
            found.consents[(supporter_id, purpose)] = bool(granted)
    found.suppressed = suppressions.strongest(session.execute(reads.suppressed, params))
    for giver, cents, monthly in session.execute(reads.gifts, params):
        if cents is not None:
            found.last_gift[giver] = LastGift(Decimal(cents) / 100, bool(monthly))
    if recent_since is not None:
        recent: dict[int, list[datetime]] = defaultdict(list)
        for supporter_id, sent_at in session.execute(
            reads.recent, {**params, "since": recent_since}
        ):
            if sent_at is not None:
                recent[supporter_id].append(sent_at)
        found.recent_sends = dict(recent)
    found.petitions = petitions(session, version_ids)
    found.confirmations = confirmations(session, pending_ids)
    return found


def confirmations(session: Session, pending_ids: Collection[int]) -> dict[int, Confirmation]:
    """The pending signatures that confirmation emails of the batch confirm (gone: purged)."""
    if not pending_ids:
        return {}
    rows = session.execute(
        select(
            PendingSignature.id,
            Petition.title,
            Petition.signature_count,
            PendingSignature.expires_at,
            PendingSignature.confirmed_at.is_not(None),
        )
        .join(Petition, Petition.id == PendingSignature.petition_id)
        .where(PendingSignature.id.in_(sorted(set(pending_ids))))
    ).all()
    return {
        pid: Confirmation(PetitionFacts(title, count, None), expires_at, bool(confirmed))
        for pid, title, count, expires_at, confirmed in rows
    }


def gift_variables(facts: Recipients, supporter_id: int) -> dict[str, object]:
    """The template variables about the supporter's last gift (engine.rules.template_variables)."""
    gift = facts.last_gift.get(supporter_id)
    return {
        "last_gift": gift.amount if gift else None,
        "last_gift_monthly": gift is not None and gift.monthly,
    }


def petitions(session: Session, version_ids: Collection[int]) -> dict[int, PetitionFacts]:
    if not version_ids:
        return {}
    reached = (
        select(Milestone.petition_id, func.max(Milestone.threshold).label("threshold"))
        .where(Milestone.reached_at.is_not(None))
        .group_by(Milestone.petition_id)
        .subquery()
    )
    rows = session.execute(
        select(JourneyVersion.id, Petition.title, Petition.signature_count, reached.c.threshold)
        .join(Petition, Petition.slug == JourneyVersion.petition_slug)
        .outerjoin(reached, reached.c.petition_id == Petition.id)
        .where(JourneyVersion.id.in_(sorted(set(version_ids))))
    ).all()
    return {vid: PetitionFacts(title, count, milestone) for vid, title, count, milestone in rows}
