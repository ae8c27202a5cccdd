"""The retention pass: anonymise supporters whose last own contact is too old.

The rule is engine.rules.rights.Retention: no signature, non-automated click or gift since
the contact cut (3 years by default), and for donors no gift since the gift cut (6 years).

Driven through `supporters.last_contact_at`'s index. The column is a lower bound: set when
the supporter is made (their signature's time), and not raised by later signatures, clicks
or gifts on their hot paths. So the pass reads only the supporters whose bound is before
the cut (few: those who crossed it since the last pass), probes each one's signatures,
clicks and gifts through their indexes for the true last contact, raises the bound of
those who came back, and anonymises the others. A supporter comes up again only when the
raised bound crosses the cut in its turn.

The same pass deletes the double opt-in signatures left unconfirmed past their expiry
(engine/store/confirmations.py), and anonymises the supporters they made who have nothing
else: no other signature, no gift, no other signature waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    any_,
    delete,
    exists,
    false,
    func,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from engine.progress import QUIET, Progress
from engine.rules.rights import Retention
from engine.store import audit, personal_data
from engine.store.models import (
    Click,
    Donation,
    PendingSignature,
    Petition,
    Signature,
    Supporter,
)

ACTION = "retention"


@dataclass
class RetentionReport:
    checked: int = 0  # bound before the cut
    came_back: int = 0  # a later contact found: bound raised
    donors_kept: int = 0  # past the contact cut, a gift within the donors' period
    anonymised: int = 0
    # Double opt-in signatures never confirmed, past their expiry: deleted.
    unconfirmed: int = 0
    message_ids: list[int] | None = None


def _last(column: Any, *where: ColumnElement[bool]) -> ColumnElement[Any]:
    return select(func.max(column)).where(*where).scalar_subquery()


def any_petition(dialect: str, column: InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """`column` is any petition's id: with a supporter id beside it, one probe per petition
    of a (petition_id, supporter_id) key. PostgreSQL: the petitions as an ARRAY computed
    once; as an IN it may read the whole index for each supporter instead. SQLite runs the
    IN as one search per petition."""
    petitions = select(Petition.id)
    if dialect == "postgresql":
        return column == any_(func.ARRAY(petitions.scalar_subquery()))
    return column.in_(petitions)


def last_contact(dialect: str) -> ColumnElement[Any]:
    """The supporter's true last own contact, each part one index probe: signatures by the
    (petition, supporter) key for each petition, clicks and gifts by their supporter index.
    Never before the stored bound (so never NULL)."""
    bound = Supporter.last_contact_at
    of_petition = any_petition(dialect, Signature.petition_id)
    parts = [
        func.coalesce(
            _last(Signature.signed_at, of_petition, Signature.supporter_id == Supporter.id),
            bound,
        ),
        func.coalesce(
            _last(Click.clicked_at, Click.supporter_id == Supporter.id, Click.automated == false()),
            bound,
        ),
        func.coalesce(_last(Donation.donated_at, Donation.supporter_id == Supporter.id), bound),
    ]
    # SQLite's max() of several arguments is PostgreSQL's greatest().
    kind = Supporter.last_contact_at.type
    if dialect == "postgresql":
        return func.greatest(*parts, type_=kind)
    return func.max(*parts, type_=kind)


def _checked(cut: datetime) -> ColumnElement[bool]:
    return and_(Supporter.last_contact_at < cut, Supporter.erased_at.is_(None))


def _gave_since(cut: datetime) -> ColumnElement[bool]:
    return exists().where(Donation.supporter_id == Supporter.id, Donation.donated_at >= cut)


def expired(session: Session, policy: Retention, now: datetime) -> Select[int]:
    """The supporters to anonymise at `now`, bounds raised or not (a dry run reads this)."""
    contact_cut, gift_cut = policy.cuts(now)
    latest = last_contact(session.get_bind().dialect.name)
    return select(Supporter.id).where(
        _checked(contact_cut), latest < contact_cut, ~_gave_since(gift_cut)
    )


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _left_unconfirmed(pending: Any, now: datetime) -> ColumnElement[bool]:
    return and_(pending.confirmed_at.is_(None), pending.expires_at <= now)


def unconfirmed(now: datetime) -> Select[int]:
    """The double opt-in signatures never confirmed, past their expiry at `now` (the expiry
    index)."""
    return select(PendingSignature.id).where(_left_unconfirmed(PendingSignature, now))


def made_by_unconfirmed(session: Session, now: datetime) -> Select[int]:
    """The supporters of those signatures who have nothing else: no signature but theirs
    (with `count_unconfirmed` they were recorded), no gift, no other signature waiting or
    confirmed. Each check one probe per petition of a (petition_id, supporter_id) key."""
    dialect = session.get_bind().dialect.name
    other = aliased(PendingSignature)
    forgotten = aliased(PendingSignature)
    signed_else = exists().where(
        Signature.supporter_id == Supporter.id,
        any_petition(dialect, Signature.petition_id),
        ~exists().where(
            forgotten.petition_id == Signature.petition_id,
            forgotten.supporter_id == Signature.supporter_id,
            _left_unconfirmed(forgotten, now),
        ),
    )
    waits_else = exists().where(
        other.supporter_id == Supporter.id,
        any_petition(dialect, other.petition_id),
        ~_left_unconfirmed(other, now),
    )
    gave = exists().where(Donation.supporter_id == Supporter.id)
    made = select(PendingSignature.supporter_id).where(_left_unconfirmed(PendingSignature, now))
    return select(Supporter.id).where(Supporter.id.in_(made), ~signed_else, ~waits_else, ~gave)


def report(session: Session, policy: Retention, now: datetime) -> RetentionReport:
    """What a pass at `now` would do; writes nothing."""
    contact_cut, gift_cut = policy.cuts(now)
    latest = last_contact(session.get_bind().dialect.name)
    checked = select(Supporter.id).where(_checked(contact_cut))
    return RetentionReport(
        checked=_count(session, checked),
        came_back=_count(session, checked.where(latest >= contact_cut)),
        donors_kept=_count(session, checked.where(latest < contact_cut, _gave_since(gift_cut))),
        anonymised=_count(session, expired(session, policy, now)),
        unconfirmed=_count(session, unconfirmed(now)),
    )


def run(
    session: Session, policy: Retention, now: datetime, *, progress: Progress = QUIET
) -> RetentionReport:
    """The pass at `now`: raise the bounds of those who came back, anonymise the others."""
    contact_cut, _ = policy.cuts(now)
    progress.phase("Checking retention periods", 1)
    found = report(session, policy, now)
    progress.advance(1)
    latest = last_contact(session.get_bind().dialect.name)
    session.execute(
        update(Supporter)
        .where(_checked(contact_cut), latest >= contact_cut)
        .values(last_contact_at=latest)
        .execution_options(synchronize_session=False)
    )
    erased = personal_data.erase(
        session,
        expired(session, policy, now),
        now=now,
        actor=audit.RETENTION,
        action=ACTION,
        progress=progress,
    )
    alone = personal_data.erase(
        session,
        made_by_unconfirmed(session, now),
        now=now,
        actor=audit.RETENTION,
        action=ACTION,
        progress=progress,
    )
    # Confirmed ones too, once expired: their signature is recorded, their link used up.
    session.execute(delete(PendingSignature).where(PendingSignature.expires_at <= now))
    found.anonymised = erased.supporters + alone.supporters
    found.message_ids = erased.message_ids + alone.message_ids
    return found
