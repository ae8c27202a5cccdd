"""`mobilise simulate` jumps from due time to due time, says why people wait, and sends what
an hourly `tick` would have sent.

The simulator runs on its own throwaway SQLite database, whatever the project uses: these
tests do not take the two-backend fixtures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from engine.cli import app
from engine.config import get_settings
from engine.declarations import read
from engine.periodic import Passes
from engine.rules.campaigns import CampaignDef
from engine.rules.conditions import Condition
from engine.rules.journeys import Journey
from engine.send.transport import MemoryTransport
from engine.simulation import report
from engine.simulation.population import HOUR, on_the_hour
from engine.simulation.run import Scenario, prepare, run, scratch, simulate
from engine.store import petitions
from engine.store.models import Enrolment, Milestone, OutboxMessage
from tests.store.journey_helpers import ROOT, SLUG

runner = CliRunner()
MONDAY = datetime(2026, 5, 11, 8, tzinfo=UTC)  # 10:00 in Paris


def seed_journey() -> tuple[CampaignDef, Journey, dict[str, Condition]]:
    declared = read(ROOT)
    assert declared.problems == []
    campaign, journey = next((c, j) for c, j in declared.journeys if j.id == SLUG)
    return campaign, journey, declared.conditions


def test_a_run_visits_only_the_instants_at_which_something_happens() -> None:
    """Given 12 signers over the first day and the petition at 140,000 on day 2, when ten
    days are simulated, then the run visits each arrival hour, each due time and the end,
    once, and nothing else: a handful of instants, not 241 hourly ticks."""
    campaign, journey, named = seed_journey()
    scenario = Scenario(supporters=12, days=10, milestone_at=2, gift_rate=0.0, start=MONDAY)
    people = scenario.people()
    with scratch() as sessions:
        timeline = prepare(sessions, campaign, journey, scenario, people)
        clock = run(sessions, timeline, named=named, end=scenario.end, gifts=False)
        with sessions.begin() as session:
            moves = session.execute(
                select(Enrolment.entered_at, Enrolment.step_at, Enrolment.exited_at)
            ).all()
            sends = session.scalars(select(OutboxMessage.sent_at)).all()
            reached = session.scalars(select(Milestone.reached_at)).all()
    happened = (
        {on_the_hour(MONDAY, p.signed_at) for p in people}
        | {at for row in moves for at in row if at is not None}
        | {at for at in [*sends, *reached] if at is not None}
        | {scenario.end}
    )

    assert sorted(clock.instants) == clock.instants
    assert set(clock.instants) == happened
    assert len(clock.instants) == len(happened) < 30
    assert clock.passes < 2 * len(clock.instants)


def test_without_the_milestone_the_run_says_the_update_waits_for_it(project: Path) -> None:
    """Given 20 signers and a petition far from 140,000, when simulated, then no update is
    sent, a note says so before the table, and the end says who waits at which step, for
    which milestone, and until when."""
    result = runner.invoke(
        app,
        ["simulate", SLUG, "--supporters", "20", "--days", "5", "--gift-rate", "0"],
    )

    assert result.exit_code == 0, result.output
    assert (
        "note: until-140000 waits for milestone 140,000 of stop-reconnaissance-faciale, which "
        "this run never reaches (at most 20 signatures: 0 already and 20 signers); people leave "
        "it only at its 30d timeout." in result.output
    )
    assert (
        "20 waiting at until-140000 for milestone 140,000 of stop-reconnaissance-faciale "
        "(not reached: 20 signatures; timeout after 30d, due from 2026-06-10 10:00 to "
        in result.output
    )
    total = next(line for line in result.output.splitlines() if line.startswith("total"))
    assert total.split()[1:] == ["20", "0", "0", "0"]
    assert "virtual time: 120 hours in " in result.output


def test_milestone_at_sends_the_update_on_that_day() -> None:
    """Given the petition pushed to 140,000 three days after a Monday 10:00 start, when
    simulated, then every consenting signer gets the update that Thursday, and nobody waits
    at the milestone any more."""
    campaign, journey, named = seed_journey()
    scenario = Scenario(supporters=30, days=6, milestone_at=3, gift_rate=0.0, start=MONDAY)

    outcome = simulate(campaign, journey, scenario, named=named)

    updates = {day: n for (day, step), n in outcome.sent.items() if step == "update"}
    consenting = sum(1 for p in scenario.people() if p.updates)
    assert updates == {"2026-05-14": consenting}
    assert [m.reached_at for m in outcome.milestones if m.threshold == 140_000] == [
        MONDAY + timedelta(days=3)
    ]
    assert "until-140000" not in [w.step_id for w in outcome.waiting]
    assert outcome.notes == []


def test_milestone_at_from_the_shell(project: Path) -> None:
    result = runner.invoke(
        app,
        ["simulate", SLUG, "--supporters", "10", "--days", "4", "--milestone-at", "1"],
    )

    assert result.exit_code == 0, result.output
    assert "note:" not in result.output
    assert "milestone 140,000 of stop-reconnaissance-faciale: reached 2026-05-12 10:00" in (
        result.output
    )
    update_day = next(line for line in result.output.splitlines() if line.startswith("2026-05-12"))
    assert int(update_day.split()[2]) > 0


def test_the_jumps_send_what_an_hourly_tick_sends(project: Path) -> None:
    """Given a small campaign with gifts, earlier donors, signers over four days and the
    milestone on day 2, when it runs once from due time to due time and once as `mobilise
    tick` every hour (journey pass and a real dispatch, again while it sends), then the
    same emails go out per
    step and day, the same stay unsent, and the enrolments end the same way."""
    campaign, journey, named = seed_journey()
    scenario = Scenario(
        supporters=40,
        days=7,
        signing_rate=10,
        milestone_at=2.5,
        donor_rate=0.3,
        gift_rate=0.3,
        start=MONDAY,
        seed=7,
    )
    jumped = simulate(campaign, journey, scenario, named=named)

    with scratch() as sessions:
        timeline = prepare(sessions, campaign, journey, scenario, scenario.people())
        ticks = Passes(get_settings(), sessions, transport_override=MemoryTransport())
        for hour in range(scenario.days * 24 + 1):
            now = MONDAY + hour * HOUR
            with sessions.begin() as session:
                timeline.record(session, now)
            # As the simulation does, pass again at the same hour while a pass sends
            # something: the next step of a journey waits for the previous email.
            for _ in range(len(journey.steps) + 1):
                if not ticks.tick(now)[1].outcomes.get("sent"):
                    break
        with sessions.begin() as session:
            hourly = report.read(session, SLUG, end=scenario.end)

    assert sum(jumped.sent.values()) > 60
    assert {step for _, step in jumped.sent} == {"thanked", "update", "ask-first", "ask-additional"}
    assert jumped.states["converted"] > 0
    assert jumped.sent == hourly.sent
    assert jumped.unsent == hourly.unsent
    assert jumped.states == hourly.states
    assert Counter(w.step_id for w in jumped.waiting) == Counter(w.step_id for w in hourly.waiting)


def test_each_kind_of_step_says_what_it_waits_for() -> None:
    """Given people left on a wait, a send, an event wait and a date wait, the end of the run
    names what each waits for and when it is due."""
    journey = Journey.model_validate(
        {
            "id": "j",
            "trigger": {"signed": "p"},
            "steps": [
                {"id": "hello", "send": {"template": "t", "transactional": True}},
                {"id": "pause", "wait": "3d"},
                {"id": "clicked", "wait_until": {"event": "link.clicked", "timeout": "7d"}},
                {"id": "launch", "wait_until": {"date": "2026-06-01T09:00:00+02:00"}},
            ],
        }
    )
    petition = petitions.PetitionRead("p", "P", 12, [])

    def why(step: str, first: datetime | None, last: datetime | None) -> str:
        return report.why_waiting(
            journey, step, petition=petition, first_due=first, last_due=last, zone="Europe/Paris"
        )

    later = MONDAY + timedelta(days=1)
    assert why("pause", MONDAY, later) == (
        "for 3d to pass (due from 2026-05-11 10:00 to 2026-05-12 10:00)"
    )
    assert why("hello", None, None) == "for their 'hello' email to be sent (no due time)"
    assert why("clicked", MONDAY, MONDAY) == (
        "for an event 'link.clicked' (timeout after 7d, due on 2026-05-11 10:00)"
    )
    assert why("launch", MONDAY, MONDAY) == "until 2026-06-01 09:00"
