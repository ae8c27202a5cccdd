"""`mobilise stats`: the funnel of the seed journey after a real tick, as a table, JSON
and CSV, on both databases; `--rebuild` counts the same again from the tables."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from engine.cli import app
from tests.conftest import BACKENDS
from tests.store.cli_helpers import SIGNED, runner, signed_up

JOURNEY = "stop-reconnaissance-faciale"


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_stats_prints_the_funnel_the_tick_produced(project: Path) -> None:
    # Given the seed campaign, two signers, and a tick that thanks them
    signed_up(project, {"alice": (True, True), "bob": (False, False)})
    ticked = runner.invoke(app, ["tick", "--now", SIGNED.isoformat()])
    assert ticked.exit_code == 0, ticked.output

    # When a fundraiser asks for the journey's figures in each format
    table = runner.invoke(app, ["stats"])
    as_json = runner.invoke(app, ["stats", JOURNEY, "--format", "json"])
    as_csv = runner.invoke(app, ["stats", JOURNEY, "--format", "csv"])
    rebuilt = runner.invoke(app, ["stats", JOURNEY, "--format", "json", "--rebuild"])

    # Then each says the thank-you went to both
    assert table.exit_code == 0, table.output
    assert f"{JOURNEY}: 2 signatures on {JOURNEY}" in table.output
    assert [
        line.split()[:3] for line in table.output.splitlines() if line.startswith("thanked")
    ] == [["thanked", "2", "0"]]
    header = next(line.split() for line in table.output.splitlines() if line.startswith("step"))
    assert header[6:9] == ["clickers", "clicks", "click_rate"]
    payload = json.loads(as_json.stdout)
    (thanked,) = [s for s in payload["steps"] if s["id"] == "thanked"]
    assert thanked["figures"]["sent"] == 2
    assert [s["id"] for s in payload["steps"]][:2] == ["thanked", "until-140000"]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["step"], r["sent"]) for r in rows] == [
        ("thanked", "2"),
        ("update", "0"),
        ("ask-additional", "0"),
        ("ask-first", "0"),
    ]
    # And counting again from the tables finds the same (the thank-you's row, the day's)
    assert "rebuilt 2 summary row(s)" in rebuilt.stderr
    assert json.loads(rebuilt.stdout) == payload

    # And per segment, both thank-yous went to Île-de-France signers who never gave
    at = ["--now", SIGNED.isoformat()]
    segments = runner.invoke(app, ["stats", JOURNEY, "--by", "segment", "--format", "json", *at])
    segment_table = runner.invoke(app, ["stats", JOURNEY, "--by", "segment", *at])
    segment_csv = runner.invoke(app, ["stats", "--by", "segment", "--format", "csv", *at])
    assert segments.exit_code == 0, segments.output
    sent = {s["segment"]: s["sent"] for s in json.loads(segments.stdout)["segments"]}
    assert (sent["ile-de-france"], sent["non-donors"], sent["donors"]) == (2, 2, 0)
    printed = dict(line.split()[:2] for line in segment_table.output.splitlines()[2:])
    assert (printed["ile-de-france"], printed["donors"]) == ("2", "0")
    by_segment = {r["segment"]: r["sent"] for r in csv.DictReader(io.StringIO(segment_csv.stdout))}
    assert by_segment["ile-de-france"] == "2"


def test_an_unknown_journey_exits_1_with_the_known_ones(project: Path) -> None:
    runner.invoke(app, ["sync"])
    result = runner.invoke(app, ["stats", "nope"])
    assert result.exit_code == 1
    assert "no journey 'nope'" in result.output
    assert JOURNEY in result.output
