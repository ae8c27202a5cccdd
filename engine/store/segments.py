"""Conditions compiled to SQL: segments select populations in the database, never in Python.

`where(condition, ...)` returns a boolean SQL expression about `supporter_id` (a column of
the outer statement), so the same tree filters an UPDATE of enrolments, an INSERT … SELECT
into the outbox, or a COUNT of supporters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from engine.rules.conditions import (
    AllOf,
    AnyOf,
    ClickedStep,
    ClickedWithin,
    Condition,
    DonatedSinceEntry,
    Donor,
    HasConsent,
    HasLocale,
    InDepartement,
    InRegion,
    InSegment,
    LastGift,
    MonthlyDonor,
    NotOf,
    Signed,
)
from engine.rules.durations import parse_duration
from engine.store import donations
from engine.store.models import (
    Click,
    Consent,
    Donation,
    OutboxMessage,
    Petition,
    Signature,
    Supporter,
)


@dataclass(frozen=True)
class Context:
    """The outer statement's columns a condition may refer to."""

    supporter_id: ColumnElement[int] | InstrumentedAttribute[int]
    now: datetime
    segments: Mapping[str, Condition]
    entered_at: ColumnElement[datetime] | InstrumentedAttribute[datetime] | None = None
    enrolment_id: ColumnElement[int] | InstrumentedAttribute[int] | None = None


def consent_in_force(
    supporter_id: ColumnElement[int] | InstrumentedAttribute[int], purpose: str
) -> ColumnElement[bool]:
    """The latest consent row for the purpose says granted (consents are append-only)."""
    latest = (
        select(Consent.granted)
        .where(Consent.supporter_id == supporter_id, Consent.purpose == purpose)
        .order_by(Consent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, false()) == true()


def _gifts(ctx: Context) -> ColumnElement[bool]:
    """The supporter's gifts that count at `now` (not refunded by then)."""
    return and_(Donation.supporter_id == ctx.supporter_id, donations.counts(Donation, ctx.now))


def where(condition: Condition, ctx: Context) -> ColumnElement[bool]:
    match condition:
        case AllOf():
            return and_(true(), *[where(c, ctx) for c in condition.all])
        case AnyOf():
            return or_(false(), *[where(c, ctx) for c in condition.any])
        case NotOf():
            return not_(where(condition.not_, ctx))
        case InRegion() | InDepartement() | HasLocale():
            # Aliased: the outer statement may itself be over supporters (segment sizes).
            person = aliased(Supporter)
            if isinstance(condition, InRegion):
                test = person.region.in_(condition.region)
            elif isinstance(condition, InDepartement):
                test = person.departement.in_(condition.departement)
            else:
                test = person.locale.in_(condition.locale)
            return exists().where(person.id == ctx.supporter_id, test)
        case Signed():
            spec = condition.signed
            clauses = [Signature.supporter_id == ctx.supporter_id, Petition.slug == spec.petition]
            if spec.after is not None:
                clauses.append(Signature.signed_at >= _midnight(spec.after))
            if spec.before is not None:
                clauses.append(Signature.signed_at < _midnight(spec.before))
            return exists().where(Signature.petition_id == Petition.id, *clauses)
        case Donor():
            gave = exists().where(_gifts(ctx))
            return gave if condition.donor else not_(gave)
        case MonthlyDonor():
            monthly = exists().where(_gifts(ctx), donations.monthly_in_force(Donation, ctx.now))
            return monthly if condition.monthly_donor else not_(monthly)
        case LastGift():
            last = donations.latest(ctx.supporter_id, ctx.now, "amount_cents")
            bounds = condition.last_gift
            clauses = [last.is_not(None)]
            if bounds.min is not None:
                clauses.append(func.coalesce(last, 0) >= round(bounds.min * 100))
            if bounds.max is not None:
                clauses.append(func.coalesce(last, 0) <= round(bounds.max * 100))
            return and_(*clauses)
        case ClickedWithin():
            since = ctx.now - parse_duration(condition.clicked_within)
            return exists().where(
                Click.supporter_id == ctx.supporter_id,
                Click.clicked_at >= since,
                Click.clicked_at <= ctx.now,
                Click.automated.is_(False),
            )
        case HasConsent():
            return consent_in_force(ctx.supporter_id, condition.consent)
        case InSegment():
            return where(ctx.segments[condition.segment], ctx)
        case DonatedSinceEntry():
            if ctx.entered_at is None:
                return false()
            return exists().where(_gifts(ctx), Donation.donated_at >= ctx.entered_at)
        case ClickedStep():
            if ctx.enrolment_id is None:
                return false()
            message = aliased(OutboxMessage)
            return exists().where(
                Click.message_id == message.id,
                Click.automated.is_(False),
                message.enrolment_id == ctx.enrolment_id,
                message.step_id == condition.clicked_step,
                Click.clicked_at <= ctx.now,
            )
    raise AssertionError(f"unknown condition {condition!r}")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def size(
    session: Session, condition: Condition, *, now: datetime, segments: Mapping[str, Condition]
) -> int:
    """How many emailable supporters the condition selects right now (one COUNT)."""
    ctx = Context(supporter_id=Supporter.id, now=now, segments=segments)
    statement = (
        select(func.count())
        .select_from(Supporter)
        .where(Supporter.email.is_not(None), Supporter.erased_at.is_(None), where(condition, ctx))
    )
    return int(session.scalar(statement) or 0)
