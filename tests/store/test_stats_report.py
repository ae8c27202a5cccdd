"""A journey's figures: steps in the journey's order with their counts, the milestone
email and what it produced, the A/B verdicts, signatures per day; as JSON, CSV and a table."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.stats import export, report
from engine.store import claims, counts, journeys, virtual
from engine.store.claims import Outcome
from engine.store.models import Enrolment, JourneyVersion
from engine.store.step_figures import StepFigures
from tests.factories import unique
from tests.store import engagement
from tests.store.journey_helpers import declare, seed_campaign, sign, supporter_id
from tests.store.plans import plan, statements

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


def ab_journey(journey_id: str) -> dict[str, object]:
    return {
        "id": journey_id,
        "title": "Merci, palier, appel",
        "trigger": {"signed": "test-petition"},
        "steps": [
            {"id": "thanks", "send": {"template": "thanked", "transactional": True}},
            {"id": "until-1000", "wait_until": {"milestone": 1000, "timeout": "30d"}},
            {"id": "news", "send": {"template": "update", "consent": "updates"}},
            {
                "id": "ask",
                "send": {
                    "consent": "updates",
                    "variants": [
                        {"name": "A", "template": "thanked"},
                        {"name": "-B", "template": "update"},
                    ],
                },
            },
        ],
    }


def seeded(session: Session) -> str:
    """A journey with a milestone email and an A/B ask; three signers on two days."""
    journey_id = unique("j")
    campaign, _ = declare(ab_journey(journey_id))
    petition_id = seed_campaign(session, campaign, T0 - timedelta(days=2))
    sign(session, petition_id, T0, {"ana": (True, True)}, signed_at=T0 - timedelta(days=1))
    sign(session, petition_id, T0, {"ben": (True, True), "cam": (True, False)})
    return journey_id


def test_a_journeys_figures_follow_its_steps(session: Session) -> None:
    # Given a journey whose thank-you and milestone emails went out and were given to
    journey_id = seeded(session)
    thanks = engagement.emails(session, T0, [(journey_id, "thanks", None)] * 4)
    news = engagement.emails(session, T0, [(journey_id, "news", None)] * 2)
    outcomes = [Outcome(i, "sent", sent_at=T0) for i in [*thanks, *news]]
    claims.record(session, outcomes, worker_id="w")
    engagement.click(session, news[0], T0)
    engagement.gift(session, news[0], T0, cents=4000)
    engagement.gift(session, news[0], T0, cents=1000, frequency="monthly")
    engagement.gift(session, None, T0, cents=2500)
    # And an A/B ask with 0.8 % against 1.2 % donors over 2,000 emails each
    counts.add(
        session,
        {
            (journey_id, "ask", "A"): StepFigures(sent=2000, donors=16, clickers=100, clicks=130),
            (journey_id, "ask", "-B"): StepFigures(sent=2000, donors=24, clickers=100),
        },
    )

    # When its figures are read
    stats = report.for_journey(session, journey_id)

    # Then the steps come in the journey's order, the milestone email marked
    assert [(s.id, s.kind, s.milestone) for s in stats.steps] == [
        ("thanks", "send", None),
        ("until-1000", "wait_until", None),
        ("news", "send", 1000),
        ("ask", "send", None),
    ]
    news_line = stats.steps[2].total
    assert news_line is not None
    assert (news_line.figures.sent, news_line.figures.clickers, news_line.figures.donors) == (
        2,
        1,
        1,
    )
    assert news_line.click_rate == 0.5
    assert news_line.conversion_rate == 0.5
    assert news_line.monthly_annualised_cents == 12000
    # 40 € over two emails: 20,000 € per 1,000 emails, monthly gifts annualised apart
    assert news_line.one_off_per_thousand_cents == 2_000_000
    assert news_line.monthly_annualised_per_thousand_cents == 6_000_000
    # And the milestone of 1,000 names the email that announces it and what it produced
    (milestone,) = [m for m in stats.milestones if m.threshold == 1000]
    assert milestone.step_id == "news"
    assert milestone.produced == news_line
    # And the A/B verdict says what a fundraiser needs to know
    gift_verdicts = [r.verdict.sentence for r in stats.ab if r.verdict.metric == "gift rate"]
    assert gift_verdicts == [
        "-B raises the gift rate by 0.4 points (1.2% against 0.8% for A), "
        "not significant yet (p = 0.20): about 7,700 more sends per variant needed."
    ]
    # And signatures per day add up to the petition's count
    assert [(d.day, d.signatures, d.total) for d in stats.days] == [
        (date(2026, 5, 12), 1, 1),
        (date(2026, 5, 13), 2, 3),
    ]
    assert stats.signatures == 3
    # And the gift no email led to still counts, apart
    assert stats.unattributed.gifts >= 1

    # When they are exported as CSV, then a variant named like a formula is neutralised
    table = list(csv.reader(io.StringIO(export.as_csv([stats]))))
    assert table[0] == list(export.COLUMNS)
    ask_rows = [row for row in table if row[1] == "ask"]
    assert [row[2] for row in ask_rows] == ["", "A", "'-B"]
    assert ask_rows[2][-1].startswith("'-B raises the gift rate")
    # And the JSON and the table carry the same numbers
    payload = export.as_json(stats)
    assert payload["steps"][2]["figures"]["donors"] == 1
    assert payload["milestones"][0]["email_step"] == "news"
    text = export.as_table(stats)
    assert "milestone 1,000: not reached; news: 2 sent, 1 donors, 40.00 EUR" in text
    # And the table says the gifts no email led to, apart, as the JSON does
    u = payload["unattributed_gifts"]
    unattributed = f"gifts no email is credited with (all journeys): {u['gifts']}, "
    assert unattributed in text
    # And the table gives a line's clickers and its clicks apart, as the CSV does
    header, *body = [line.split() for line in text.splitlines()[1:8]]
    (ask_a,) = [row for row in body if row[:2] == ["ask", "A"]]
    assert [ask_a[header.index(name)] for name in ("clickers", "clicks")] == ["100", "130"]
    assert [ask_rows[1][export.COLUMNS.index(n)] for n in ("clickers", "clicks")] == ["100", "130"]


def test_the_signatures_curve_ends_at_a_count_raised_without_dated_rows(
    session: Session,
) -> None:
    # Given a petition whose count was raised to 997 before the campaign, with no
    # signature row for those (counted elsewhere), then three signers on two days
    journey_id = unique("j")
    campaign, _ = declare(ab_journey(journey_id))
    petition_id = seed_campaign(session, campaign, T0 - timedelta(days=3))
    virtual.raise_count(session, petition_id=petition_id, to=997, now=T0 - timedelta(days=3))
    sign(session, petition_id, T0, {"ana": (True, True)}, signed_at=T0 - timedelta(days=1))
    sign(session, petition_id, T0, {"ben": (True, True), "cam": (True, False)})

    # When the journey's figures are read
    stats = report.for_journey(session, journey_id)

    # Then the curve starts from the count held without a dated row and ends at the count
    assert stats.signatures == 1000
    assert [(d.day, d.signatures, d.total) for d in stats.days] == [
        (date(2026, 5, 12), 1, 998),
        (date(2026, 5, 13), 2, 1000),
    ]
    # And the milestone of 1,000 is reached on a day the curve reaches 1,000
    (reached,) = [m for m in stats.milestones if m.threshold == 1000]
    assert reached.reached_at is not None
    (that_day,) = [d for d in stats.days if d.day == reached.reached_at.date()]
    assert that_day.total >= 1000 > that_day.total - that_day.signatures


def test_an_unknown_journey_is_a_404_naming_the_known_ones(session: Session) -> None:
    journey_id = seeded(session)
    with pytest.raises(NotFound) as raised:
        report.for_journey(session, "nope")
    assert raised.value.status_code == 404
    assert journey_id in (raised.value.hint or "")


def enrol(
    session: Session,
    version_id: int,
    name: str,
    step: str,
    *,
    entry: int = 1,
    state: str = "active",
) -> None:
    journey_id = session.get(JourneyVersion, version_id).journey_id  # type: ignore[union-attr]
    session.add(
        Enrolment(
            journey_id=journey_id,
            journey_version_id=version_id,
            entry=entry,
            supporter_id=supporter_id(session, name),
            state=state,
            step_id=step,
            step_at=T0,
            entered_at=T0,
        )
    )
    session.flush()


def test_people_at_each_step_are_the_active_ones_of_every_version(session: Session) -> None:
    # Given a journey changed once (two versions), people on each, and another journey
    journey_id = seeded(session)
    campaign, _ = declare({**ab_journey(journey_id), "title": "Merci, palier, appel (v2)"})
    journeys.sync_journeys(session, [campaign], T0)
    first, second = session.scalars(
        select(JourneyVersion.id)
        .where(JourneyVersion.journey_id == journey_id)
        .order_by(JourneyVersion.version)
    ).all()
    enrol(session, first, "ana", "until-1000")
    enrol(session, first, "ben", "ask", state="exited")
    enrol(session, second, "ben", "until-1000", entry=2)
    enrol(session, second, "cam", "ask")
    elsewhere = unique("j")
    seed_campaign(session, declare(ab_journey(elsewhere))[0], T0)
    (other,) = session.scalars(
        select(JourneyVersion.id).where(JourneyVersion.journey_id == elsewhere)
    ).all()
    enrol(session, other, "cam", "until-1000")

    # When the journey's figures are read, and with them the statements they ran
    with statements(session) as seen:
        stats = report.for_journey(session, journey_id)

    # Then each step counts the journey's people there now, whichever version they are on
    assert {s.id: s.people_here for s in stats.steps} == {
        "thanks": 0,
        "until-1000": 2,
        "news": 0,
        "ask": 1,
    }
    # And no statement reads a table that grows with the signers or the events in full
    # (enrolments along their index, signatures per day from their summary rows)
    tables = ("enrolments", "journey_versions", "signature_days", "donations", "step_counts")
    along_versions = re.compile(
        r"ix_enrolments_due \(journey_version_id=\?"  # SQLite
        # PostgreSQL: an index scan, or a bitmap scan of the same index (which of the two
        # follows the statistics of the moment)
        r"|(using|Bitmap Index Scan on) ix_enrolments_due( on enrolments)? .*\n"
        r"\s*Index Cond: \(\(journey_version_id"
    )
    for statement, parameters in seen:
        assert not re.search(r"\b(FROM|JOIN) signatures\b", statement), statement
        found = plan(session, statement, parameters, tables)
        assert not re.search(r"\bSCAN (donations|outbox)\b", found), found
        if "enrolments" in statement:
            assert along_versions.search(found), found
