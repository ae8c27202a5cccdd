"""The journey commands from the shell: validate, tick, explain, segments, simulate; and
the passes' locks as `tick` and `gdpr retention` meet them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine.cli import app
from engine.config import get_settings
from engine.store import locks
from engine.store.db import make_engine
from tests.store.cli_helpers import runner, signed_up


def test_validate_accepts_the_seed_files(project: Path) -> None:
    result = runner.invoke(app, ["validate"])

    assert result.exit_code == 0, result.output
    assert "ok: 1 journey(s), 6 segment(s)" in result.output


def test_validate_prints_file_and_line_and_exits_1(project: Path) -> None:
    seed = project / "journeys" / "stop-reconnaissance-faciale.yaml"
    seed.write_text(seed.read_text().replace("consent: updates", "consent: nouvelles"))

    result = runner.invoke(app, ["validate"])

    assert result.exit_code == 1
    assert f"{seed}:57: journey 'stop-reconnaissance-faciale': unknown consent purpose" in (
        result.output
    )


def test_validate_reports_a_petition_declared_by_two_campaign_files(project: Path) -> None:
    # Given a second campaign file that declares the seed's petition again
    seed = project / "journeys" / "stop-reconnaissance-faciale.yaml"
    copy = project / "journeys" / "zz-copy.yaml"
    copy.write_text(seed.read_text().replace("campaign: ", "campaign: copie-", 1))
    line = copy.read_text().splitlines().index("  slug: stop-reconnaissance-faciale") + 1

    # When the files are validated, or synced
    validated = runner.invoke(app, ["validate"])
    synced = runner.invoke(app, ["sync"])

    # Then both say where, and nothing is synced
    for result in (validated, synced):
        assert result.exit_code == 1
        assert f"{copy}:{line}: petition 'stop-reconnaissance-faciale' is declared by" in (
            result.output
        )
    assert "journey stop-reconnaissance-faciale" not in synced.output


def test_tick_then_explain_tells_why_an_email_was_not_sent(project: Path) -> None:
    signed_up(project, {"carol": (False, False)})

    ticked = runner.invoke(app, ["tick", "--now", "2026-05-13T11:30:00"])
    runner.invoke(app, ["tick", "--now", "2026-06-13T11:30:00+02:00"])
    explained = runner.invoke(app, ["explain", "carol@example.org"])

    assert ticked.exit_code == 0, ticked.output
    assert "queued    stop-reconnaissance-faciale/thanked: 1" in ticked.output
    assert explained.exit_code == 0, explained.output
    assert "  sent      1" in ticked.output
    assert "email 'thanked' (thanked) sent" in explained.output
    assert len(list((project / "var" / "outbox").glob("*.eml"))) == 1
    assert "email 'update' (update) suppressed — no consent to updates" in explained.output


@pytest.mark.parametrize("project", ["postgresql"], indirect=True)
def test_tick_leaves_the_journey_pass_to_the_process_running_it(project: Path) -> None:
    # Given a signer, and a scheduler's journey pass running on the same database
    signed_up(project, {"dan": (True, True)})
    engine = make_engine(get_settings().database_url)
    running = engine.connect()
    try:
        with Session(running) as other, other.begin():
            assert locks.try_hold(other, "journeys")

            # When a tick runs meanwhile, then it says so and walks nobody
            during = runner.invoke(app, ["tick", "--now", "2026-05-13T11:30:00"])
            assert during.exit_code == 0, during.output
            assert "journeys: running in another process, not run here" in during.output
            assert "queued" not in during.output
    finally:
        running.close()
        engine.dispose()

    # And once that pass is over, the next tick runs it
    after = runner.invoke(app, ["tick", "--now", "2026-05-13T11:31:00"])
    assert "queued    stop-reconnaissance-faciale/thanked: 1" in after.output


@pytest.mark.parametrize("project", ["postgresql"], indirect=True)
def test_retention_by_hand_is_refused_while_a_scheduler_runs_it(project: Path) -> None:
    # Given a scheduler's retention pass running on the same database
    engine = make_engine(get_settings().database_url)
    running = engine.connect()
    try:
        with Session(running) as other, other.begin():
            assert locks.try_hold(other, "retention")

            # When a manager runs it by hand, then it is refused, saying why
            refused = runner.invoke(app, ["gdpr", "retention"])
            assert refused.exit_code == 1, refused.output
            assert "the retention pass is running in another process" in refused.output
    finally:
        running.close()
        engine.dispose()

    # And once that pass is over, it runs
    assert runner.invoke(app, ["gdpr", "retention"]).exit_code == 0


def test_segments_prints_each_size(project: Path) -> None:
    result = runner.invoke(app, ["segments"])

    assert result.exit_code == 0, result.output
    assert "donors" in result.output


def test_simulate_prints_sends_per_day_and_step(project: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            "stop-reconnaissance-faciale",
            "--supporters",
            "40",
            "--days",
            "5",
            "--already",
            "139990",
        ],
    )

    assert result.exit_code == 0, result.output
    assert "thanked" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("total")]
    assert lines
    assert lines[0].split()[1] == "40"
