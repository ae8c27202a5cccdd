"""Suppressions: addresses not to email, for good or for a while.

For good (`expires_at` NULL): unsubscribes, hard bounces, complaints, erasure. These are
opt-outs: a journey with `exit_on_unsubscribe` lets the supporter go. For a while: a
provider's block (SendGrid `bounce` of type `blocked`), which says more about our sending
than about the address; until `expires_at` every email to the address is suppressed with
reason `blocked`, and the supporter stays in their journeys.

`in_force` is the one test of "applies at this instant": every reader (the advance pass,
journey exits, the dispatcher's last look, the planner's facts) filters with it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    case,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from engine.config import Secret
from engine.rules.supporters import email_hash
from engine.store import counts, events, step_figures
from engine.store.models import OutboxMessage, Supporter, Suppression
from engine.store.types import Moment

# The outbox reasons of a suppressed email: an opt-out, or a block still in force.
OPTED_OUT = "unsubscribed"
BLOCKED = "blocked"


def in_force(now: Moment, *, for_good: bool = False) -> ColumnElement[bool]:
    """The suppression rows that apply at `now`: those for good, and those not yet expired.

    With `for_good`, only those for good: the opt-outs that end journeys."""
    if for_good:
        return Suppression.expires_at.is_(None)
    return or_(Suppression.expires_at.is_(None), Suppression.expires_at > now)


def outbox_reason(expires_at: Any) -> ColumnElement[str]:
    """The reason an email is suppressed by a row in force, from the row's `expires_at`."""
    return case((expires_at.is_(None), OPTED_OUT), else_=BLOCKED)


def reasons_in_force(
    session: Session, supporters: ColumnElement[bool], *, now: datetime
) -> dict[int, str]:
    """supporter id -> OPTED_OUT or BLOCKED, for the suppressions in force among
    `supporters` (a condition on Suppression.supporter_id). An opt-out outranks a block."""
    return strongest(session.execute(in_force_among(supporters, now)))


def in_force_among(supporters: ColumnElement[bool], now: Moment) -> Executable:
    """(supporter id, expires_at) of the suppressions in force at `now` among `supporters`
    (a condition on Suppression.supporter_id); `strongest` reads them."""
    return select(Suppression.supporter_id, Suppression.expires_at).where(supporters, in_force(now))


def strongest(rows: Iterable[Sequence[Any]]) -> dict[int, str]:
    """supporter id -> OPTED_OUT or BLOCKED from `in_force_among`'s rows. An opt-out
    outranks a block."""
    found: dict[int, str] = {}
    for supporter_id, expires_at in rows:
        if supporter_id is not None and found.get(supporter_id) != OPTED_OUT:
            found[supporter_id] = OPTED_OUT if expires_at is None else BLOCKED
    return found


@dataclass(frozen=True)
class SuppressionCreate:
    reason: str
    occurred_at: datetime
    supporter_id: int | None = None
    email: str | None = None
    expires_at: datetime | None = None  # None: for good


def add_many(
    session: Session, items: Sequence[SuppressionCreate], *, now: datetime, secret: Secret
) -> int:
    """Record suppressions set-based, once per (address, reason); a later one of the same
    reason lengthens a temporary one (a new block) rather than adding a row. Returns how
    many were new or lengthened. `secret` keys the address hash (`email_hash`)."""
    if not items:
        return 0
    emails = {i.email for i in items if i.email}
    ids = {i.supporter_id for i in items if i.supporter_id is not None}
    # One lookup serves both directions: the address of a known supporter, the supporter
    # of a known address.
    known_people = session.execute(
        select(Supporter.id, Supporter.email).where(
            or_(Supporter.email.in_(emails), Supporter.id.in_(ids))
        )
    ).all()
    by_email = {email: sid for sid, email in known_people if email}
    email_of = {sid: email for sid, email in known_people}
    wanted: dict[tuple[str, str], dict[str, object]] = {}
    # (address hash, reason) -> when the suppression ends, None: for good.
    until: dict[tuple[str, str], datetime | None] = {}
    for item in items:
        supporter_id = item.supporter_id or by_email.get(item.email or "")
        email = item.email or email_of.get(item.supporter_id or -1)
        if email is None:
            continue  # an erased supporter is suppressed already, by hash
        key = (email_hash(email, secret), item.reason)
        until[key] = _longer(until[key], item.expires_at) if key in until else item.expires_at
        wanted.setdefault(
            key,
            {
                "supporter_id": supporter_id,
                "email_hash": key[0],
                "reason": item.reason,
                "created_at": now,
            },
        )
    # By address alone, through its index: PostgreSQL planned the (hash, reason) pairs as
    # a scan of every suppression (a webhook batch of 8,000 bounces: 7 s).
    known = {
        (digest, reason): (row_id, expires_at)
        for row_id, digest, reason, expires_at in session.execute(
            select(
                Suppression.id, Suppression.email_hash, Suppression.reason, Suppression.expires_at
            ).where(Suppression.email_hash.in_({digest for digest, _ in wanted}))
        )
        if (digest, reason) in wanted
    }
    fresh = [{**row, "expires_at": until[key]} for key, row in wanted.items() if key not in known]
    if fresh:
        session.execute(insert(Suppression), fresh)
    # A new block while one is in force (or after it ended) moves its end, never earlier.
    longer = [
        {"row_id": row_id, "until": until[key]}
        for key, (row_id, ends) in known.items()
        if ends is not None and _longer(ends, until[key]) != ends
    ]
    if longer:
        session.connection().execute(_LENGTHEN, longer)
    return len(fresh) + len(longer)


def _longer(a: datetime | None, b: datetime | None) -> datetime | None:
    """When the longer of two suppressions ends (None: for good)."""
    return None if a is None or b is None else max(a, b)


_TABLE = cast(Table, Suppression.__table__)
# Core, not ORM: an executemany UPDATE keyed by a bound id, one round trip.
_LENGTHEN = (
    update(_TABLE).where(_TABLE.c.id == bindparam("row_id")).values(expires_at=bindparam("until"))
)


def unsubscribe_message(
    session: Session, message_id: int, *, now: datetime, secret: Secret
) -> bool:
    """Unsubscribe the supporter a message went to; False if no such message. Idempotent."""
    supporter_id = session.scalar(
        select(OutboxMessage.supporter_id).where(OutboxMessage.id == message_id)
    )
    if supporter_id is None:
        return False
    add_many(
        session,
        [SuppressionCreate("unsubscribe", now, supporter_id=supporter_id)],
        now=now,
        secret=secret,
    )
    first = events.append(
        session,
        kind="supporter.unsubscribed",
        source_key=step_figures.unsubscribe_key(message_id),
        occurred_at=now,
        supporter_id=supporter_id,
        payload={"message_id": message_id},
    )
    if first:
        counts.refresh(session, [message_id])
    return True


# Erasure at the supporter's request: the keyed hash of the address stays, for good.
ERASED = "erased"


def erased_hashes(session: Session) -> frozenset[str]:
    """Every erased address's hash: as many as erasure requests, read once per import."""
    return frozenset(
        session.scalars(select(Suppression.email_hash).where(Suppression.reason == ERASED))
    )


def erased_supporter(session: Session, digests: Collection[str]) -> int | None:
    """The supporter whose address, of one of the hashes `digests` (one per key,
    rules.supporters.email_hashes), was erased at their request (the latest, should the
    address have signed and been erased again); None for none."""
    found: int | None = session.scalar(
        select(Suppression.supporter_id)
        .where(
            Suppression.email_hash.in_(sorted(digests)),
            Suppression.reason == ERASED,
            Suppression.supporter_id.is_not(None),
        )
        .order_by(Suppression.id.desc())
        .limit(1)
    )
    return found


def erased_among(session: Session, hashes: Collection[str]) -> set[str]:
    """The address hashes (`email_hash`) among `hashes` whose owner asked for erasure:
    through the hash index, one statement per call."""
    if not hashes:
        return set()
    return set(
        session.scalars(
            select(Suppression.email_hash).where(
                Suppression.email_hash.in_(sorted(set(hashes))), Suppression.reason == ERASED
            )
        )
    )


def relink_erased(session: Session, emails: Mapping[str, str]) -> None:
    """Tie each erased address's suppression (address -> its hash) to the supporter who
    has that address again: they receive nothing (docs/privacy.md, "Erasure")."""
    if not emails:
        return
    session.connection().execute(
        update(_TABLE)
        .where(_TABLE.c.email_hash == bindparam("digest"), _TABLE.c.reason == ERASED)
        .values(
            supporter_id=select(Supporter.id)
            .where(Supporter.email == bindparam("address"))
            .scalar_subquery()
        ),
        [{"digest": digest, "address": email} for email, digest in emails.items()],
    )
