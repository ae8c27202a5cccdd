"""Hypothesis strategies for the generated-journey differential test: journeys written as
in a campaign file, the people who sign, give, withdraw consent, unsubscribe, click and
record events, and the instants at which passes run.

Every journey drawn is valid (the test checks it with `validate_campaign` through
`journey_helpers.declare`): steps only lead forward, so the journey is a DAG, and the steps
no path reaches are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from hypothesis import strategies as st

from engine.rules.journeys import DAYS, EXIT, Journey
from engine.rules.windows import next_allowed
from tests.store.journey_helpers import CONSENTS, MILESTONES, PETITION, plain_templates

# Starts of a run: a Wednesday morning in May, the Friday evening before the spring DST
# change, the Friday evening before the autumn one (in Paris and New York).
STARTS = (
    datetime(2026, 5, 13, 9, 30, tzinfo=UTC),
    datetime(2026, 3, 27, 18, 0, tzinfo=UTC),
    datetime(2026, 10, 23, 19, 0, tzinfo=UTC),
)
ZONES = ("Europe/Paris", "America/New_York", "UTC")
SPANS = ("30m", "2h", "1d", "3d")
# The kind of event a `wait_until: {event: …}` step waits for.
EVENT = "survey-answered"
# The repository's segments (segments/*.yaml).
SEGMENTS = (
    "donors",
    "non-donors",
    "monthly-donors",
    "grands-donateurs",
    "ile-de-france",
    "bretagne-engages",
)
# Paris (Île-de-France), Brest (Bretagne), Marseille, and no postal code.
POSTAL_CODES = ("75011", "29200", "13001", None)
NAMES = ("alice", "bob", "chloe", "david")
# When a person clicks a link of an email, after it was sent.
SPANS_AFTER_SENT = (timedelta(0), timedelta(minutes=20), timedelta(days=2))

# Sends are what the journeys are for; an exit step ends most walks early.
STEP_KINDS = ("send",) * 8 + ("wait",) * 2 + ("until",) * 2 + ("branch",) * 2 + ("exit",)
TRIGGERS: tuple[dict[str, Any], ...] = (
    {"signed": PETITION},
    {"signed": PETITION},
    {"signed": PETITION},
    {"milestone": {"petition": PETITION, "threshold": MILESTONES[0]}},
    {"donated": True},
)
minutes = st.integers(0, 60 * 24 * 12).map(lambda m: timedelta(minutes=m))


def conditions(t0: datetime, step_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Conditions of branches and goals: every leaf the language has that a population
    of signers can make true or false, combined with all/any/not."""
    day = t0.date()
    gift_bounds = st.fixed_dictionaries(
        {},
        optional={
            "min": st.sampled_from([5, 20, 100]),
            "max": st.sampled_from([15, 50]),
        },
    )
    signed = st.fixed_dictionaries(
        {"petition": st.just(PETITION)},
        optional={
            "after": st.sampled_from([day - timedelta(days=40), day]).map(str),
            "before": st.sampled_from([day, day + timedelta(days=1)]).map(str),
        },
    )
    leaves = st.one_of(
        st.sampled_from(CONSENTS).map(lambda p: {"consent": p}),
        st.booleans().map(lambda b: {"donor": b}),
        st.booleans().map(lambda b: {"monthly_donor": b}),
        gift_bounds.map(lambda b: {"last_gift": b}),
        st.sampled_from([["Bretagne"], ["Île-de-France", "Bretagne"]]).map(lambda r: {"region": r}),
        st.sampled_from(["1h", "1d", "3d"]).map(lambda d: {"clicked_within": d}),
        st.sampled_from(step_ids).map(lambda s: {"clicked_step": s}),
        st.sampled_from(SEGMENTS).map(lambda s: {"segment": s}),
        st.just({"donated_since_entry": True}),
        signed.map(lambda s: {"signed": s}),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=4,
    )


def sends(draw: st.DrawFn) -> dict[str, Any]:
    templates = st.sampled_from(plain_templates())
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["template"] = draw(templates)
    else:
        weights = draw(st.lists(st.integers(1, 3), min_size=2, max_size=3))
        spec["variants"] = [
            {"name": "AB"[i] if i < 2 else "C", "template": draw(templates), "weight": w}
            for i, w in enumerate(weights)
        ]
    if draw(st.integers(0, 3)) == 0:
        spec["transactional"] = True
        if draw(st.integers(0, 3)) == 0:
            spec["consent"] = draw(st.sampled_from(CONSENTS))
    else:
        spec["consent"] = draw(st.sampled_from(CONSENTS))
    if draw(st.integers(0, 3)) == 0:
        spec["max_signature_age"] = draw(st.sampled_from(["1d", "30d"]))
    return spec


def waits_until(draw: st.DrawFn, t0: datetime, later: list[str]) -> dict[str, Any]:
    on_timeout = st.sampled_from(["next", "exit", *later[:-1]])
    kind = draw(st.sampled_from(["milestone", "event", "date"]))
    spec: dict[str, Any] = {}
    if kind == "milestone":
        spec["milestone"] = draw(st.sampled_from(MILESTONES))
    elif kind == "event":
        spec["event"] = EVENT
    else:
        spec["date"] = (t0 + draw(minutes)).isoformat()
    if kind != "date" or draw(st.booleans()):
        spec["timeout"] = draw(st.sampled_from(SPANS))
        spec["on_timeout"] = draw(on_timeout)
    return spec


def hours(draw: st.DrawFn) -> dict[str, str]:
    start, end = draw(
        st.lists(st.integers(0, 47), min_size=2, max_size=2, unique=True).map(
            lambda pair: [f"{h // 2:02d}:{30 * (h % 2):02d}" for h in pair]
        )
    )
    return {"start": start, "end": end}


@st.composite
def journeys(draw: st.DrawFn, t0: datetime) -> dict[str, Any]:
    """A journey entered by signing PETITION (mostly), by its first milestone or by giving,
    as written in YAML."""
    trigger = draw(st.sampled_from(TRIGGERS))
    count = draw(st.integers(1, 8))
    ids = [f"s{i}" for i in range(count)]
    steps: list[dict[str, Any]] = []
    for i, step_id in enumerate(ids):
        later = [*ids[i + 1 :], EXIT]
        kind = draw(st.sampled_from(STEP_KINDS))
        step: dict[str, Any] = {"id": step_id}
        if kind == "send":
            step["send"] = sends(draw)
            if "signed" not in trigger:
                step["send"].pop("max_signature_age", None)
        elif kind == "wait":
            step["wait"] = draw(st.sampled_from(SPANS))
        elif kind == "until":
            step["wait_until"] = waits_until(draw, t0, later)
        elif kind == "branch":
            cases = st.fixed_dictionaries(
                {"if": conditions(t0, ids), "goto": st.sampled_from(later)}
            )
            step["branch"] = {
                "cases": draw(st.lists(cases, min_size=1, max_size=2)),
                "else": draw(st.sampled_from(later)),
            }
        else:
            step["exit"] = draw(st.sampled_from(["done", "not-now"]))
        if kind in ("send", "wait", "until") and draw(st.integers(0, 3)) == 0:
            step["next"] = draw(st.sampled_from(later))
        steps.append(step)
    steps = reachable(steps)
    if draw(st.booleans()):
        steps = shuffled(draw, steps)
    journey: dict[str, Any] = {
        "id": "generated",
        "trigger": trigger,
        "exit_on_unsubscribe": draw(st.booleans()),
        "reentry": draw(st.sampled_from(["never", "after_exit"])),
        "steps": steps,
    }
    goal = draw(
        st.sampled_from(["none", "none", "gave", "condition"]).flatmap(
            lambda g: (
                st.just({"donated_since_entry": True})
                if g == "gave"
                else conditions(t0, ids)
                if g == "condition"
                else st.none()
            )
        )
    )
    if goal is not None and not ("donated" in trigger and "donated_since_entry" in str(goal)):
        journey["goal"] = goal
    if draw(st.booleans()):
        journey["frequency_cap"] = {
            "max": draw(st.integers(1, 2)),
            "per": draw(st.sampled_from(["1h", "12h", "48h"])),
        }
    if draw(st.booleans()):
        journey["quiet_hours"] = hours(draw)
    if draw(st.integers(0, 2)) == 0:
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
        journey["send_window"] = {"days": days, **hours(draw)}
        if not opens(journey):
            del journey["quiet_hours"]
    return journey


def opens(journey: dict[str, Any]) -> bool:
    """The send window has an instant outside quiet hours."""
    parsed = Journey.model_validate(journey)
    try:
        next_allowed(STARTS[0], zone="UTC", quiet=parsed.quiet_hours, window=parsed.send_window)
    except ValueError:
        return False
    return True


def reachable(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps a path from the first one reaches, in their order. Dropping the others
    changes no path: a reached step that goes on to the following one makes it reached."""
    journey = Journey.model_validate({"id": "j", "trigger": {"signed": "p"}, "steps": steps})
    seen = {steps[0]["id"]}
    todo = [steps[0]["id"]]
    while todo:
        for target in journey.targets(todo.pop()):
            if target != EXIT and target not in seen:
                seen.add(target)
                todo.append(target)
    return [s for s in steps if s["id"] in seen]


def shuffled(draw: st.DrawFn, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same journey with its steps listed in another order (the first stays first):
    each step that went on to the following one names it in `next`, so the paths are the
    same, but the store's rounds, which go down the list, meet the steps in another order."""
    journey = Journey.model_validate({"id": "j", "trigger": {"signed": "p"}, "steps": steps})
    explicit = [
        {**s, "next": journey.successor(s["id"])} if not ({"branch", "exit"} & s.keys()) else s
        for s in steps
    ]
    return [explicit[0], *draw(st.permutations(explicit[1:]))]


@dataclass(frozen=True)
class Gift:
    at: timedelta  # after the start; may be before it (recorded when the person signs)
    cents: int
    monthly: bool


@dataclass(frozen=True)
class Person:
    name: str
    postal_code: str | None
    consents: tuple[bool, bool]  # updates, fundraising, as ticked when signing
    signs: timedelta  # when the signature is recorded, after the start
    age: timedelta  # how long before being recorded the petition was signed
    gifts: tuple[Gift, ...]
    # (when, purpose, granted): a later opt-in or withdrawal
    consent_changes: tuple[tuple[timedelta, str, bool], ...]
    # (when, how long: None for good): an unsubscribe or a provider's block
    suppressions: tuple[tuple[timedelta, timedelta | None], ...]
    events: tuple[timedelta, ...]  # EVENT recorded for the person
    # (step id, how long after the step's email was sent): a click on a link of it
    clicks: tuple[tuple[str, timedelta], ...]


def people(step_ids: list[str]) -> st.SearchStrategy[list[Person]]:
    later = st.one_of(st.just(timedelta(0)), minutes)
    likely = st.sampled_from([True, True, False])
    gift = st.builds(
        Gift,
        # Gifts on the same instant test which one is the last.
        at=st.one_of(
            st.sampled_from([-60 * 24 * 30, 0, 60 * 24]),
            st.integers(-60 * 24 * 60, 60 * 24 * 12),
        ).map(lambda m: timedelta(minutes=m)),
        cents=st.sampled_from([500, 1500, 2000, 10000, 15000]),
        monthly=st.booleans(),
    )
    person = st.builds(
        Person,
        name=st.just(""),
        postal_code=st.sampled_from(POSTAL_CODES),
        consents=st.tuples(likely, likely),
        signs=st.one_of(st.just(timedelta(0)), later),
        # Ages either side of and at the `max_signature_age`s (1d, 30d).
        age=st.sampled_from(
            [timedelta(0), timedelta(hours=23), timedelta(days=1), timedelta(days=30)]
            + [timedelta(hours=30), timedelta(days=400)]
        ),
        gifts=st.lists(gift, max_size=3).map(tuple),
        consent_changes=st.lists(
            st.tuples(minutes, st.sampled_from(CONSENTS), st.booleans()), max_size=2
        ).map(tuple),
        suppressions=st.lists(
            st.tuples(minutes, st.sampled_from([None, timedelta(days=7), timedelta(hours=5)])),
            max_size=1,
        ).map(tuple),
        events=st.lists(st.one_of(st.just(timedelta(0)), minutes), max_size=2).map(tuple),
        clicks=st.lists(
            st.tuples(st.sampled_from(step_ids), st.sampled_from(SPANS_AFTER_SENT)), max_size=2
        ).map(tuple),
    )
    return st.lists(person, min_size=1, max_size=len(NAMES)).map(
        lambda found: [
            Person(**{**p.__dict__, "name": name}) for p, name in zip(found, NAMES, strict=False)
        ]
    )


# A pass instant: after the previous one by a span, at the next due time the store reports
# (an enrolment's or a queued email's, as `simulate` jumps), or again at the same instant
# once the emails due then are sent.
Tick = timedelta | Literal["due", "again"]
ticks: st.SearchStrategy[list[Tick]] = st.lists(
    st.one_of(
        st.sampled_from(["due", "again"]),
        st.sampled_from([5, 60, 9 * 60, 24 * 60, 3 * 24 * 60]).map(lambda m: timedelta(minutes=m)),
        st.integers(1, 60 * 24 * 4).map(lambda m: timedelta(minutes=m)),
    ),
    min_size=1,
    max_size=12,
)


# What the dispatcher does with the emails due when a pass runs: sends them at their due
# time; sends them late, at the pass; or sends them without knowing it (SendGrid's request
# timed out: `ambiguous`), confirmed sent at their due time by the provider's events when
# the next pass runs.
Dispatcher = Literal["on time", "late", "unsure"]
DISPATCHERS: tuple[Dispatcher, ...] = ("on time", "late", "unsure")


@dataclass(frozen=True)
class Scenario:
    start: datetime
    zone: str
    journey: dict[str, Any]
    people: list[Person]
    ticks: list[Tick]
    # Ids per statement of the advance: the default, or windows of one or two enrolments.
    batch: int | None
    # When the petition reaches each milestone, after the start (None: never).
    milestones: dict[int, timedelta | None]
    # How the dispatcher handles what is due when a pass runs (`Dispatcher`).
    dispatcher: Dispatcher


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    start = draw(st.sampled_from(STARTS))
    journey = draw(journeys(start))
    step_ids = [s["id"] for s in journey["steps"]]
    reached = st.one_of(st.none(), st.just(timedelta(0)), minutes)
    first = draw(reached)
    second = draw(reached) if first is not None else None
    return Scenario(
        start=start,
        zone=draw(st.sampled_from(ZONES)),
        journey=journey,
        people=draw(people(step_ids)),
        ticks=draw(ticks),
        batch=draw(st.sampled_from([None, 1, 2])),
        milestones={
            MILESTONES[0]: first,
            MILESTONES[1]: None if second is None or first is None else first + second,
        },
        dispatcher=draw(st.sampled_from(DISPATCHERS)),
    )
