"""The condition language shared by segments, branches and goals: a small declarative AST.

A condition is a YAML mapping with exactly one key (`region: [Bretagne]`, `donor: true`,
`all: [...]`). The store compiles it to SQL for whole populations; `holds` evaluates it
for one supporter's facts (the planner, `explain`, tests). Both read the same tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from engine.rules.durations import parse_duration


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AllOf(Strict):
    all: list[Condition] = Field(min_length=1)


class AnyOf(Strict):
    any: list[Condition] = Field(min_length=1)


class NotOf(Strict):
    not_: Condition = Field(alias="not")


class InRegion(Strict):
    region: list[str] = Field(min_length=1)


class InDepartement(Strict):
    departement: list[str] = Field(min_length=1)


class HasLocale(Strict):
    locale: list[str] = Field(min_length=1)


class SignedSpec(Strict):
    petition: str
    after: date | None = None
    before: date | None = None


class Signed(Strict):
    signed: SignedSpec


class Donor(Strict):
    """Gave at least once (one-off or monthly, any time) when true; never gave when false.
    A refunded gift no longer counts from its refund on (here and in every gift condition)."""

    donor: bool


class MonthlyDonor(Strict):
    """Has a monthly gift in force (not cancelled) when true."""

    monthly_donor: bool


class GiftRange(Strict):
    """Last gift in currency units (euros), bounds inclusive: a one-off gift or a monthly
    payment, whichever came last (`last_gift` below)."""

    min: float | None = None
    max: float | None = None


class LastGift(Strict):
    last_gift: GiftRange


class ClickedWithin(Strict):
    """Engagement: clicked any tracked link in the last duration (e.g. `30d`)."""

    clicked_within: str

    @field_validator("clicked_within")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class HasConsent(Strict):
    consent: str


class InSegment(Strict):
    segment: str


class DonatedSinceEntry(Strict):
    """Journey context: gave after entering the journey (the usual goal)."""

    donated_since_entry: Literal[True]


class ClickedStep(Strict):
    """Journey context: clicked a link of this step's email."""

    clicked_step: str


def _tag(value: Any) -> str | None:
    """Which condition a raw mapping (or an already built model) is."""
    if isinstance(value, BaseModel):
        return _TAGS.get(type(value))
    if isinstance(value, Mapping) and len(value) == 1:
        return str(next(iter(value)))
    return None


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[InRegion, Tag("region")]
    | Annotated[InDepartement, Tag("departement")]
    | Annotated[HasLocale, Tag("locale")]
    | Annotated[Signed, Tag("signed")]
    | Annotated[Donor, Tag("donor")]
    | Annotated[MonthlyDonor, Tag("monthly_donor")]
    | Annotated[LastGift, Tag("last_gift")]
    | Annotated[ClickedWithin, Tag("clicked_within")]
    | Annotated[HasConsent, Tag("consent")]
    | Annotated[InSegment, Tag("segment")]
    | Annotated[DonatedSinceEntry, Tag("donated_since_entry")]
    | Annotated[ClickedStep, Tag("clicked_step")],
    Discriminator(
        _tag,
        custom_error_type="condition",
        custom_error_message=(
            "a condition is a mapping with one key: all, any, not, region, departement, "
            "locale, signed, donor, monthly_donor, last_gift, clicked_within, consent, "
            "segment, donated_since_entry or clicked_step"
        ),
    ),
]

_TAGS: dict[type[BaseModel], str] = {
    AllOf: "all",
    AnyOf: "any",
    NotOf: "not",
    InRegion: "region",
    InDepartement: "departement",
    HasLocale: "locale",
    Signed: "signed",
    Donor: "donor",
    MonthlyDonor: "monthly_donor",
    LastGift: "last_gift",
    ClickedWithin: "clicked_within",
    HasConsent: "consent",
    InSegment: "segment",
    DonatedSinceEntry: "donated_since_entry",
    ClickedStep: "clicked_step",
}


for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()


def children(condition: Condition) -> list[Condition]:
    if isinstance(condition, AllOf):
        return list(condition.all)
    if isinstance(condition, AnyOf):
        return list(condition.any)
    if isinstance(condition, NotOf):
        return [condition.not_]
    return []


def walk(condition: Condition) -> list[Condition]:
    """Every node, depth first."""
    found = [condition]
    for child in children(condition):
        found += walk(child)
    return found


# --- evaluation for one supporter (never used to select populations: the store compiles SQL)


@dataclass(frozen=True)
class Gift:
    """A one-off gift, or one payment of a monthly gift (its amount is the monthly amount).

    From `refunded_at` on, the gift no longer counts; from `cancelled_at` on, a monthly
    gift no longer makes a monthly donor (engine.store.donations)."""

    amount_cents: int
    donated_at: datetime
    monthly: bool = False
    refunded_at: datetime | None = None
    cancelled_at: datetime | None = None

    def counts(self, now: datetime) -> bool:
        return self.donated_at <= now and (self.refunded_at is None or self.refunded_at > now)

    def monthly_in_force(self, now: datetime) -> bool:
        return self.monthly and (self.cancelled_at is None or self.cancelled_at > now)


@dataclass(frozen=True)
class Facts:
    """What the planner may know about one supporter at `now`. Built by the edges."""

    region: str | None = None
    departement: str | None = None
    locale: str = "fr"
    consents: frozenset[str] = frozenset()
    # Suppressed for good (unsubscribe, hard bounce, complaint): ends journeys.
    unsubscribed: bool = False
    # Blocked for a while, the block in force at `now`: emails suppressed, journeys go on.
    blocked: bool = False
    # Processing restricted (GDPR art. 18): not enrolled, no step taken, nothing sent.
    restricted: bool = False
    signatures: tuple[tuple[str, datetime], ...] = ()
    # In the order they were recorded (the store: by donated_at, then id).
    gifts: tuple[Gift, ...] = ()
    # (step id, clicked at) for clicks on this supporter's journey emails, automated ones
    # (prefetchers, scanners: engine.store.clicks) left out.
    clicks: tuple[tuple[str, datetime], ...] = ()
    events: tuple[tuple[str, datetime], ...] = ()
    # (petition slug, threshold) -> reached at
    milestones: Mapping[tuple[str, int], datetime] = field(default_factory=dict)
    # due times of this supporter's campaign (non-transactional) emails, any journey
    campaign_sends: tuple[datetime, ...] = ()


def holds(
    condition: Condition,
    facts: Facts,
    *,
    now: datetime,
    segments: Mapping[str, Condition],
    entered_at: datetime | None = None,
) -> bool:
    """Does `condition` hold for this supporter at `now`?"""

    def rec(c: Condition) -> bool:
        return holds(c, facts, now=now, segments=segments, entered_at=entered_at)

    match condition:
        case AllOf():
            return all(rec(c) for c in condition.all)
        case AnyOf():
            return any(rec(c) for c in condition.any)
        case NotOf():
            return not rec(condition.not_)
        case InRegion():
            return facts.region in condition.region
        case InDepartement():
            return facts.departement in condition.departement
        case HasLocale():
            return facts.locale in condition.locale
        case Signed():
            spec = condition.signed
            return any(
                slug == spec.petition
                and (spec.after is None or at.date() >= spec.after)
                and (spec.before is None or at.date() < spec.before)
                for slug, at in facts.signatures
            )
        case Donor():
            return bool(_past_gifts(facts, now)) == condition.donor
        case MonthlyDonor():
            return (
                any(g.monthly_in_force(now) for g in _past_gifts(facts, now))
                == condition.monthly_donor
            )
        case LastGift():
            gift = last_gift(facts, now)
            if gift is None:
                return False
            last = gift.amount_cents
            bounds = condition.last_gift
            return (bounds.min is None or last >= round(bounds.min * 100)) and (
                bounds.max is None or last <= round(bounds.max * 100)
            )
        case ClickedWithin():
            since = now - parse_duration(condition.clicked_within)
            return any(since <= at <= now for _, at in facts.clicks)
        case HasConsent():
            return condition.consent in facts.consents
        case InSegment():
            return rec(segments[condition.segment])
        case DonatedSinceEntry():
            return entered_at is not None and any(
                entered_at <= g.donated_at for g in _past_gifts(facts, now)
            )
        case ClickedStep():
            return any(
                step == condition.clicked_step and at <= now and at >= (entered_at or at)
                for step, at in facts.clicks
            )
    raise AssertionError(f"unknown condition {condition!r}")


def _past_gifts(facts: Facts, now: datetime) -> list[Gift]:
    return [g for g in facts.gifts if g.counts(now)]


def last_gift(facts: Facts, now: datetime) -> Gift | None:
    """The latest gift given by `now` and not refunded by then, one-off or monthly; on a
    tie, the last recorded.

    The store's twin is engine.store.donations.latest: the same order (donated_at, then
    id), so that `last_gift` conditions, template amounts and explain agree."""
    found = None
    for gift in _past_gifts(facts, now):
        if found is None or gift.donated_at >= found.donated_at:
            found = gift
    return found


def implies_donor(condition: Condition, segments: Mapping[str, Condition]) -> bool:
    """True when the condition can only hold for someone who gave (for template variables)."""
    match condition:
        case Donor():
            return condition.donor
        case MonthlyDonor():
            return condition.monthly_donor
        case LastGift() | DonatedSinceEntry():
            return True
        case AllOf():
            return any(implies_donor(c, segments) for c in condition.all)
        case AnyOf():
            return all(implies_donor(c, segments) for c in condition.any)
        case InSegment():
            target = segments.get(condition.segment)
            return target is not None and implies_donor(target, segments)
    return False
