"""`GET /api/journeys/{id}/stats`: a fundraiser's key reads the figures the store counted,
as JSON or CSV; no key, no figures; an unknown journey is a 404 (both databases)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine import declarations
from engine.rules.staff import Role
from engine.stats import export, report
from engine.store import counts
from engine.store.db import make_sessionmaker
from engine.store.step_figures import StepFigures
from tests.e2e import dashboard_helpers as given
from tests.e2e.dashboard_helpers import Clock
from tests.factories import unique
from tests.store import engagement
from tests.store.journey_helpers import ROOT, declare, seed_campaign, sign
from tests.store.test_segment_stats import sent
from tests.store.test_stats_report import ab_journey

NOW = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


@pytest.fixture
def client(committed_url: str) -> Iterator[TestClient]:
    yield from given.client(committed_url, Clock())


def counted_journey(engine: Engine) -> str:
    """A journey with an A/B ask whose summary rows say 2,000 emails each way."""
    journey_id = unique("j")
    campaign, _ = declare(ab_journey(journey_id))
    with make_sessionmaker(engine).begin() as session:
        seed_campaign(session, campaign, NOW)
        counts.add(
            session,
            {
                (journey_id, "ask", "A"): StepFigures(sent=2000, donors=16, one_off_cents=64000),
                (journey_id, "ask", "-B"): StepFigures(sent=2000, donors=24, one_off_cents=90000),
            },
        )
    return journey_id


def test_a_fundraiser_reads_a_journeys_figures_as_json_and_csv(
    client: TestClient, committed_engine: Engine
) -> None:
    # Given a counted journey and a fundraiser's key
    journey_id = counted_journey(committed_engine)
    key = given.new_key(committed_engine, Role.fundraiser, "Fanny")[1]
    auth = {"Authorization": f"Bearer {key}"}

    # When she asks for its figures
    answer = client.get(f"/api/journeys/{journey_id}/stats", headers=auth)

    # Then she reads what the store counted
    assert answer.status_code == 200, answer.text
    with make_sessionmaker(committed_engine).begin() as session:
        expected = export.as_json(report.for_journey(session, journey_id))
    assert answer.json() == expected
    (ask,) = [s for s in answer.json()["steps"] if s["id"] == "ask"]
    assert ask["figures"]["sent"] == 4000
    assert ask["figures"]["per_1000_emails_cents"]["one_off"] == 38500
    assert [v["variant"] for v in ask["variants"]] == ["A", "-B"]
    (gifts,) = [r for r in answer.json()["ab"] if r["metric"] == "gift rate"]
    assert gifts["verdict"].startswith("-B raises the gift rate by 0.4 points")

    # And as CSV, cells that a spreadsheet would run neutralised
    as_csv = client.get(f"/api/journeys/{journey_id}/stats?format=csv", headers=auth)
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["step"], r["variant"], r["sent"]) for r in rows if r["step"] == "ask"] == [
        ("ask", "", "4000"),
        ("ask", "A", "2000"),
        ("ask", "'-B", "2000"),
    ]


def test_no_key_no_figures_and_an_unknown_journey_is_a_404(
    client: TestClient, committed_engine: Engine
) -> None:
    journey_id = counted_journey(committed_engine)
    key = given.new_key(committed_engine, Role.fundraiser)[1]
    assert client.get(f"/api/journeys/{journey_id}/stats").status_code == 401
    missing = client.get("/api/journeys/nope/stats", headers={"Authorization": f"Bearer {key}"})
    assert missing.status_code == 404
    assert missing.json()["error"] == "no journey 'nope'"


def test_a_fundraiser_reads_a_journeys_figures_per_segment(
    client: TestClient, committed_engine: Engine
) -> None:
    # Given a journey's thank-you to a Paris signer, who then gave 50 €
    journey_id = unique("j")
    campaign, _ = declare(ab_journey(journey_id))
    name = unique("paul")
    with make_sessionmaker(committed_engine).begin() as session:
        petition_id = seed_campaign(session, campaign, NOW - timedelta(days=1))
        sign(session, petition_id, NOW - timedelta(days=1), {name: (True, True)})
        thanks = sent(session, journey_id, "thanks", name)
        engagement.gift(session, thanks, NOW - timedelta(hours=1), cents=5000)
    auth = {"Authorization": f"Bearer {given.new_key(committed_engine, Role.fundraiser)[1]}"}

    # When a fundraiser asks for its figures per segment
    answer = client.get(f"/api/journeys/{journey_id}/stats?by=segment", headers=auth)

    # Then each declared segment has its row, as the store counts it now
    assert answer.status_code == 200, answer.text
    declared = declarations.read_segments(ROOT / "segments").segments
    with make_sessionmaker(committed_engine).begin() as session:
        expected = report.by_segment(session, journey_id, declared, now=NOW)
    assert answer.json() == export.segments_json(expected)
    rows = {s["segment"]: s for s in answer.json()["segments"]}
    assert (rows["ile-de-france"]["sent"], rows["ile-de-france"]["donors"]) == (1, 1)
    assert rows["donors"]["one_off_cents"] == 5000
    assert rows["non-donors"]["sent"] == 0

    # And as CSV, one row per segment, amounts in euros
    as_csv = client.get(f"/api/journeys/{journey_id}/stats?by=segment&format=csv", headers=auth)
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    table = {r["segment"]: r for r in csv.DictReader(io.StringIO(as_csv.text))}
    assert sorted(table) == sorted(declared)
    assert (table["donors"]["sent"], table["donors"]["one_off_eur"]) == ("1", "50.00")
