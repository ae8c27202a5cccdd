"""The outbox: one row per enrolment and step, written set-based by the advance pass.

The UNIQUE (enrolment_id, step_id) pair is the idempotency key (engine.rules.plan.outbox_key
names its parts): a pass replayed, a crash between statements, two workers racing, none
can queue a step twice. The dispatcher (engine/send) claims `queued` rows that are due.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from engine.rules.journeys import SendStep
from engine.rules.plan import VARIANT_MULTIPLIER, cap_delay, outbox_key, step_salt
from engine.rules.windows import send_time
from engine.store.journeys import Loaded
from engine.store.models import Enrolment, OutboxMessage, Suppression
from engine.store.segments import consent_in_force

# The key's parts, in the order `outbox_key` returns them: the conflict target below.
KEY_COLUMNS = ("enrolment_id", "step_id")
assert outbox_key(0, "s") == (0, "s")


@dataclass(frozen=True)
class OutboxRead:
    id: int
    journey_id: str
    step_id: str
    template: str
    variant: str | None
    status: str
    reason: str | None
    due_at: datetime
    sent_at: datetime | None


def suppressed(supporter_id: ColumnElement[int] | object) -> ColumnElement[bool]:
    return exists().where(Suppression.supporter_id == supporter_id)


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


def queue(
    session: Session, loaded: Loaded, step: SendStep, ready: ColumnElement[bool], now: datetime
) -> int:
    """INSERT … SELECT one outbox row per ready enrolment; returns the rows queued."""
    spec = step.send
    due = send_time(now, loaded.journey, zone=loaded.zone, transactional=spec.transactional)
    template, variant = variant_columns(step)
    no_consent = (
        ~consent_in_force(Enrolment.supporter_id, spec.consent)
        if spec.consent is not None
        else literal(False)
    )
    status = case(
        (no_consent, "suppressed"),
        (suppressed(Enrolment.supporter_id), "suppressed"),
        else_="queued",
    )
    later = "quiet-hours" if due > now else None
    reason = case(
        (no_consent, f"no-consent:{spec.consent}"),
        (suppressed(Enrolment.supporter_id), "unsubscribed"),
        else_=literal(later),
    )
    rows = select(
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
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert_(OutboxMessage)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=list(KEY_COLUMNS))
        # SQLAlchemy only keeps UPDATE/DELETE row counts unless asked (psycopg gives -1).
        .execution_options(preserve_rowcount=True)
    )
    queued = session.connection().execute(statement).rowcount
    if loaded.journey.frequency_cap is not None and not spec.transactional:
        cap(session, loaded, step.id, ready, due)
    return queued


def cap(
    session: Session, loaded: Loaded, step_id: str, ready: ColumnElement[bool], due: datetime
) -> int:
    """Defer the rows just queued that break the frequency cap, as `cap_delay` decides.

    Only the supporters with another campaign email near the new one are read back (a join,
    not a scan per supporter); the deferred times come from the pure rule and go back in
    one executemany. Every row one `queue` call writes has the same due time, so the
    window is a pair of constants (no date arithmetic in SQL, which the dialects disagree on)."""
    limit = loaded.journey.frequency_cap
    assert limit is not None
    other = aliased(OutboxMessage)
    pairs = session.execute(
        select(OutboxMessage.id, OutboxMessage.due_at, other.due_at)
        .join(Enrolment, Enrolment.id == OutboxMessage.enrolment_id)
        .join(
            other,
            and_(
                other.supporter_id == OutboxMessage.supporter_id,
                other.id != OutboxMessage.id,
                other.transactional.is_(False),
                other.status.in_(("queued", "sent")),
                other.due_at > due - limit.period,
                other.due_at <= due + limit.period,
            ),
        )
        .where(
            ready,
            OutboxMessage.step_id == step_id,
            OutboxMessage.status == "queued",
            OutboxMessage.due_at == due,
        )
    ).all()
    nearby: dict[int, list[datetime]] = defaultdict(list)
    own: dict[int, datetime] = {}
    for message_id, due, other_due in pairs:
        nearby[message_id].append(other_due)
        own[message_id] = due
    changes = []
    for message_id, others in nearby.items():
        deferred = cap_delay(loaded.journey, tuple(others), own[message_id])
        if deferred is not None:
            changes.append({"mid": message_id, "due": deferred})
    if changes:
        table = OutboxMessage.__table__
        assert isinstance(table, Table)
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("mid"))
            .values(due_at=bindparam("due"), reason="frequency-cap"),
            changes,
        )
    return len(changes)


def for_supporter(session: Session, supporter_id: int) -> list[OutboxRead]:
    rows = session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.journey_id,
            OutboxMessage.step_id,
            OutboxMessage.template,
            OutboxMessage.variant,
            OutboxMessage.status,
            OutboxMessage.reason,
            OutboxMessage.due_at,
            OutboxMessage.sent_at,
        )
        .where(OutboxMessage.supporter_id == supporter_id)
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
    ).all()
    return [OutboxRead(*row) for row in rows]
