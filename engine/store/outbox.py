"""The outbox: one row per enrolment and step, written set-based by the advance pass.

The UNIQUE (enrolment_id, step_id) pair is the idempotency key (engine.rules.plan.outbox_key
names its parts): a pass replayed, a crash between statements, two workers racing, none
can queue a step twice. The dispatcher (engine/send) claims `queued` rows that are due.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased
from sqlalchemy.sql import Select
from sqlalchemy.sql.functions import FunctionElement

from engine.rules.durations import parse_duration
from engine.rules.journeys import SendSpec, SendStep, SignedTrigger
from engine.rules.plan import VARIANT_MULTIPLIER, capped_until, outbox_key, step_salt
from engine.rules.windows import send_time
from engine.store import suppressions
from engine.store.inserts import insert_skipping
from engine.store.journeys import Loaded
from engine.store.models import (
    Consent,
    Enrolment,
    OutboxMessage,
    Petition,
    Signature,
    Suppression,
)

# The key's parts, in the order `outbox_key` returns them: the conflict target below.
KEY_COLUMNS = ("enrolment_id", "step_id")
assert outbox_key(0, "s") == (0, "s")


# Emails in these states will never be sent: the frequency cap does not count them.
DROPPED = ("suppressed", "failed")
# An email in one of these states is still to be sent, or not known to be sent (a send that
# timed out, or a worker that died mid-send: `ambiguous` until the provider's events tell,
# engine/store/claims.py): its enrolment takes no further step.
AWAITING = ("queued", "held", "sending", "ambiguous")


def awaiting(
    enrolment_id: ColumnElement[int] | InstrumentedAttribute[int], besides: str
) -> ColumnElement[bool]:
    """The enrolment has an email still to be sent, other than step `besides`'s own (which
    the step itself queues, or finds queued when someone is put back on it). Through the
    outbox's enrolment-first key."""
    return exists().where(
        OutboxMessage.enrolment_id == enrolment_id,
        OutboxMessage.status.in_(AWAITING),
        OutboxMessage.step_id != besides,
    )


def sent_after(
    enrolment_id: ColumnElement[int] | InstrumentedAttribute[int], moment: datetime
) -> ColumnElement[bool]:
    """The enrolment had an email sent after `moment`."""
    return exists().where(
        OutboxMessage.enrolment_id == enrolment_id, OutboxMessage.sent_at > moment
    )


def of_supporter(supporter_id: int) -> ColumnElement[bool]:
    """A supporter's outbox rows (see `of_supporters`)."""
    return of_supporters(select(literal(supporter_id)))


def of_supporters(supporters: Select[Any]) -> ColumnElement[bool]:
    """The outbox rows of the supporters a one-column SELECT of ids yields: journey emails
    through their enrolments (no supporter index here), and double opt-in confirmations
    (engine/rules/optin.py: a negative enrolment id) among the range of those."""
    enrolled = select(Enrolment.id).where(Enrolment.supporter_id.in_(supporters))
    return or_(
        OutboxMessage.enrolment_id.in_(enrolled),
        and_(OutboxMessage.enrolment_id < 0, OutboxMessage.supporter_id.in_(supporters)),
    )


def variant_bucket_sql(step_id: str, total: int) -> ColumnElement[int]:
    """SQL twin of engine.rules.plan.variant_bucket, over the enrolment id."""
    return (Enrolment.id * VARIANT_MULTIPLIER + step_salt(step_id)) % total


def variant_columns(step: SendStep) -> tuple[ColumnElement[str], ColumnElement[str | None]]:
    """(template, variant) per row: a CASE over the weighted buckets, as pick_variant does."""
    spec = step.send
    if spec.template is not None:
        return literal(spec.template), literal(None)
    bucket = variant_bucket_sql(step.id, sum(v.weight for v in spec.variants))
    bounds, upper = [], 0
    for variant in spec.variants:
        upper += variant.weight
        bounds.append((bucket < upper, variant))
    template = case(*[(test, v.template) for test, v in bounds])
    name = case(*[(test, v.name) for test, v in bounds])
    return template, name


def _lookups(
    dialect: str, purpose: str | None, now: datetime
) -> tuple[Select[Any], ColumnElement[bool], ColumnElement[str | None]]:
    """(enrolments joined to their consent and suppression, no-consent test, the reason of
    the suppression in force: NULL if none, an opt-out before a block).

    Each lookup is joined once per row so that both CASEs of `queue` read plain columns
    (a correlated lookup inside each CASE runs twice per row). The join's shape is the one
    each database runs best, measured over a million rows: PostgreSQL takes a LATERAL
    index probe (a join on max(id) became a hash join spilling to disk); SQLite has no
    LATERAL and probes the primary key with the max(id) from a covering index."""
    if dialect == "postgresql":
        latest = (
            select(Consent.granted)
            .where(Consent.supporter_id == Enrolment.supporter_id, Consent.purpose == purpose)
            .order_by(Consent.id.desc())
            .limit(1)
            .lateral("latest_consent")
        )
        block_ids = (
            select(suppressions.outbox_reason(Suppression.expires_at).label("reason"))
            .where(Suppression.supporter_id == Enrolment.supporter_id, suppressions.in_force(now))
            # An opt-out (NULL) first, read backwards along (supporter_id, expires_at).
            .order_by(Suppression.expires_at.desc().nulls_first())
            .limit(1)
            .lateral("any_block")
        )
        source = select(Enrolment).outerjoin(block_ids, true())
        granted: ColumnElement[Any] | InstrumentedAttribute[Any] = latest.c.granted
        block_reason: ColumnElement[Any] = block_ids.c.reason
        if purpose is not None:
            source = source.outerjoin(latest, true())
    else:
        consent = aliased(Consent)
        block = aliased(Suppression)
        latest_id = (
            select(func.max(Consent.id))
            .where(Consent.supporter_id == Enrolment.supporter_id, Consent.purpose == purpose)
            .scalar_subquery()
        )
        any_block = (
            select(Suppression.id)
            .where(Suppression.supporter_id == Enrolment.supporter_id, suppressions.in_force(now))
            # An opt-out (NULL) first: SQLite's index order, so no sort per row.
            .order_by(Suppression.expires_at.asc().nulls_first())
            .limit(1)
            .scalar_subquery()
        )
        source = select(Enrolment).outerjoin(block, block.id == any_block)
        granted = consent.granted
        block_reason = case(
            (block.id.is_not(None), suppressions.outbox_reason(block.expires_at)), else_=None
        )
        if purpose is not None:
            source = source.outerjoin(consent, consent.id == latest_id)
    no_consent: ColumnElement[bool] = literal(False)
    if purpose is not None:
        no_consent = or_(granted.is_(None), granted.is_(False))
    return source, no_consent, block_reason


def signed_too_long_ago(loaded: Loaded, spec: SendSpec, now: datetime) -> ColumnElement[bool]:
    """SQL twin of engine.rules.plan.signed_too_long_ago, per enrolment: no signature of the
    journey's petition since the cut (one probe of the signatures' petition-supporter key)."""
    trigger = loaded.journey.trigger
    if spec.max_signature_age is None or not isinstance(trigger, SignedTrigger):
        return literal(False)
    petition_id = select(Petition.id).where(Petition.slug == trigger.signed).scalar_subquery()
    cut = now - parse_duration(spec.max_signature_age)
    return ~exists().where(
        Signature.petition_id == petition_id,
        Signature.supporter_id == Enrolment.supporter_id,
        Signature.signed_at >= cut,
    )


def queue(
    session: Session, loaded: Loaded, step: SendStep, ready: ColumnElement[bool], now: datetime
) -> int:
    """INSERT … SELECT one outbox row per ready enrolment; returns the rows queued."""
    spec = step.send
    due = send_time(now, loaded.journey, zone=loaded.zone, transactional=spec.transactional)
    template, variant = variant_columns(step)
    dialect = session.get_bind().dialect.name
    source, no_consent, suppressed = _lookups(dialect, spec.consent, now)
    blocked = suppressed.is_not(None)
    later = "quiet-hours" if due > now else None
    too_old = signed_too_long_ago(loaded, spec, now)
    status = case(
        (too_old, "suppressed"),
        (no_consent, "suppressed"),
        (blocked, "suppressed"),
        else_="queued",
    )
    reason = case(
        (too_old, "signed-too-long-ago"),
        (no_consent, f"no-consent:{spec.consent}"),
        (blocked, suppressed),
        else_=literal(later),
    )
    rows = source.with_only_columns(
        Enrolment.id,
        literal(step.id),
        Enrolment.supporter_id,
        literal(loaded.journey.id),
        literal(loaded.version_id),
        template,
        variant,
        literal(spec.transactional),
        status,
        reason,
        literal(due, OutboxMessage.due_at.type),
        literal(now, OutboxMessage.created_at.type),
        maintain_column_froms=True,
    ).where(ready)
    columns = [
        "enrolment_id",
        "step_id",
        "supporter_id",
        "journey_id",
        "journey_version_id",
        "template",
        "variant",
        "transactional",
        "status",
        "reason",
        "due_at",
        "created_at",
    ]
    return insert_skipping(session, OutboxMessage, columns, rows, KEY_COLUMNS)


def defer(session: Session, step_id: str, due: datetime, capped: Mapping[int, datetime]) -> None:
    """Apply the frequency cap's deferrals to rows `queue` wrote (one executemany)."""
    if not capped:
        return
    table = OutboxMessage.__table__
    assert isinstance(table, Table)
    session.connection().execute(
        update(table)
        .where(
            table.c.enrolment_id == bindparam("eid"),
            table.c.step_id == step_id,
            table.c.status == "queued",
            table.c.due_at == due,
        )
        .values(due_at=bindparam("deferred"), reason="frequency-cap"),
        [{"eid": eid, "deferred": deferred} for eid, deferred in capped.items()],
    )


def cap_deferrals(
    session: Session, loaded: Loaded, ready: ColumnElement[bool], due: datetime
) -> dict[int, datetime]:
    """enrolment id -> deferred due time, for the ready enrolments the frequency cap holds.

    Read before any row of the step is queued, so that those rows are not "other" emails.

    Driven from the ready enrolments: for each, the supporter's emails are read through
    indexes (the supporter's enrolments by the unique supporter-first key, each one's emails
    by the outbox's enrolment-first key) and those within a period either side of `due`
    counted, and the pure rule decides (`capped_until`). The window is an aggregate's
    FILTER, not a WHERE, so that no database can start from the (status, due) index over
    every email of the window instead: SQLite did from a join (after an update to 140,000
    people, five due asks read them all), PostgreSQL from this subquery over tables not yet
    analysed. Every row one `queue` call writes has the same due time, so the window is a
    pair of constants (no date arithmetic in SQL, on which the dialects disagree)."""
    limit = loaded.journey.frequency_cap
    assert limit is not None
    other = aliased(OutboxMessage)
    sibling = aliased(Enrolment)
    near = and_(
        other.status.not_in(DROPPED),
        other.due_at > due - limit.period,
        other.due_at <= due + limit.period,
        other.transactional.is_(False),
    )

    theirs = (
        select(sibling.id)
        .where(sibling.supporter_id == Enrolment.supporter_id)
        .correlate_except(sibling)
    )
    postgresql = session.get_bind().dialect.name == "postgresql"

    def nearby(measure: FunctionElement[Any]) -> ColumnElement[Any]:
        if postgresql:
            # The supporter's enrolment ids as an ARRAY, probed in the outbox's key: as a
            # join, PostgreSQL may hash the whole outbox for each due row.
            return (
                select(measure.filter(near))
                .select_from(other)
                .where(other.enrolment_id == any_(func.ARRAY(theirs.scalar_subquery())))
                .scalar_subquery()
            )
        return (
            select(measure.filter(near))
            .select_from(sibling)
            .join(other, other.enrolment_id == sibling.id)
            .where(sibling.supporter_id == Enrolment.supporter_id)
            .scalar_subquery()
        )

    recent = nearby(func.count())
    rows = session.execute(
        select(Enrolment.id, recent, nearby(func.max(other.due_at))).where(
            ready, recent >= limit.max
        )
    ).all()
    found = {}
    for enrolment_id, count, latest in rows:
        deferred = capped_until(loaded.journey, count, latest)
        if deferred is not None:
            found[enrolment_id] = deferred
    return found
