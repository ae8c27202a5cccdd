"""`mobilise demo`: a small campaign made by the real engine in virtual time, whose figures
the dashboard's API reads exactly as the database holds them (both databases); a database
holding a campaign is refused, and emptied only with --force; the virtual dispatch records
the template version each email's links resolve against."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.api.app import create_app
from engine.cli import app
from engine.config import get_settings
from engine.rules.staff import Role
from engine.rules.supporters import parse_email
from engine.simulation.crowd import DOMAINS
from engine.simulation.demo import refuse_filled
from engine.store import apikeys, contents, links, virtual
from engine.store.db import make_engine, make_sessionmaker
from tests.conftest import BACKENDS
from tests.store import engagement

runner = CliRunner()
END = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
JOURNEY = SLUG = "stop-reconnaissance-faciale"


def by_step(engine: Engine, sql: str) -> dict[tuple[str, str | None], tuple[int, ...]]:
    """(step, variant) -> the other columns of `sql`, read from the database itself."""
    with engine.connect() as connection:
        return {
            (row[0], row[1]): tuple(int(x or 0) for x in row[2:])
            for row in connection.execute(text(sql))
        }


SENT = "SELECT step_id, variant, count(*) FROM outbox WHERE status = 'sent' GROUP BY 1, 2"
CLICKS = """SELECT o.step_id, o.variant, count(*), count(DISTINCT c.message_id)
    FROM clicks c JOIN outbox o ON o.id = c.message_id WHERE NOT c.automated GROUP BY 1, 2"""
GIFTS = """SELECT o.step_id, o.variant, count(*), count(DISTINCT d.message_id),
    sum(CASE WHEN d.frequency = 'one-off' THEN d.amount_cents ELSE 0 END),
    sum(CASE WHEN d.frequency = 'monthly' THEN d.amount_cents ELSE 0 END)
    FROM donations d JOIN outbox o ON o.id = d.message_id GROUP BY 1, 2"""
BOUNCED = """SELECT step_id, variant, count(*) FROM outbox
    WHERE delivery IN ('bounce', 'dropped') GROUP BY 1, 2"""
DELIVERED = """SELECT step_id, variant, count(*) FROM outbox WHERE delivery IN
    ('delivered', 'open', 'click', 'unsubscribe', 'group_unsubscribe', 'spamreport')
    GROUP BY 1, 2"""
UNSUBSCRIBED = """SELECT o.step_id, o.variant, count(*) FROM outbox o
    WHERE o.delivery IN ('unsubscribe', 'group_unsubscribe', 'spamreport') OR EXISTS (
      SELECT 1 FROM events e WHERE e.source_key = 'unsubscribe:' || CAST(o.id AS VARCHAR))
    GROUP BY 1, 2"""


def figures_of(stats: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, int]]:
    """(step, variant) -> figures, as the API gives them; a step's own line when it has no
    variants."""
    found = {}
    for step in stats["steps"]:
        if step["figures"] is None:
            continue
        if step["variants"]:
            found.update({(step["id"], v["variant"]): v for v in step["variants"]})
        else:
            found[(step["id"], None)] = step["figures"]
    return found


def api(url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a fundraiser's dashboard reads: the journey's figures and the petition's count."""
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        _, key = apikeys.create(session, role=Role.fundraiser, label="Fanny", now=END)
    engine.dispose()
    with TestClient(create_app(get_settings())) as client:
        stats = client.get(
            f"/api/journeys/{JOURNEY}/stats", headers={"Authorization": f"Bearer {key}"}
        )
        petition = client.get(f"/api/petitions/{SLUG}")
    assert stats.status_code == 200, stats.text
    assert petition.status_code == 200, petition.text
    return stats.json(), petition.json()


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_the_demo_fills_a_campaign_whose_api_figures_are_the_databases(project: Path) -> None:
    # Given an empty database and the shipped campaign
    url = get_settings().database_url

    # When the demo makes six weeks of it with 2,000 signatures, ending at END
    made = runner.invoke(app, ["demo", "--signatures", "2000", "--now", END.isoformat()])

    # Then it says what it made
    assert made.exit_code == 0, made.output
    found = re.search(r"\(([\d,]+) before the six weeks", made.output)
    assert found is not None
    before = int(found[1].replace(",", ""))
    assert "A/B test on the first-gift ask: variants long, short" in made.output

    # And the petition's count is the signatures stored plus those counted before, with
    # 140,000 crossed within the six weeks (the count starts lower than the milestone)
    stats, petition = api(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        stored, paper = connection.execute(
            text("SELECT count(*), count(*) - count(supporter_id) FROM signatures")
        ).one()
        reached: dict[int, object] = {
            threshold: at
            for threshold, at in connection.execute(
                text("SELECT threshold, reached_at FROM milestones")
            )
        }
        addresses = list(connection.execute(text("SELECT email FROM supporters")).scalars())
    assert petition["count"] == before + stored == stats["petition"]["signatures"]
    assert 1_900 <= stored <= 2_000
    assert paper > 0
    assert before < 140_000 <= petition["count"] < 200_000
    milestones = {m["threshold"]: m["reached_at"] for m in petition["milestones"]}
    assert milestones.keys() == {100_000, 140_000, 200_000}
    assert milestones[200_000] is None
    assert reached.get(200_000) is None
    crossed = datetime.fromisoformat(milestones[140_000])
    assert END - timedelta(days=42) < crossed < END
    # (100,000 by the signatures gathered before the six weeks, before them)
    assert datetime.fromisoformat(milestones[100_000]) < END - timedelta(days=42)
    assert reached[140_000] is not None

    # And every figure of the journey's funnel is what the database holds
    api_figures = figures_of(stats)
    sent = by_step(engine, SENT)
    clicks, gifts = by_step(engine, CLICKS), by_step(engine, GIFTS)
    bounced, unsubscribed = by_step(engine, BOUNCED), by_step(engine, UNSUBSCRIBED)
    delivered = by_step(engine, DELIVERED)
    engine.dispose()
    assert {k: f["sent"] for k, f in api_figures.items() if f["sent"]} == {
        k: n for k, (n,) in sent.items()
    }
    assert {k: (f["clicks"], f["clickers"]) for k, f in api_figures.items() if f["clicks"]} == (
        clicks
    )
    assert {
        k: (f["gifts"], f["donors"], f["one_off_cents"], f["monthly_cents"])
        for k, f in api_figures.items()
        if f["gifts"]
    } == gifts
    assert {k: f["bounced"] for k, f in api_figures.items() if f["bounced"]} == {
        k: n for k, (n,) in bounced.items()
    }
    assert {k: f["unsubscribed"] for k, f in api_figures.items() if f["unsubscribed"]} == {
        k: n for k, (n,) in unsubscribed.items()
    }
    assert {k: f["delivered"] for k, f in api_figures.items() if f["delivered"]} == {
        k: n for k, (n,) in delivered.items()
    }

    # And the campaign lived: every email of the journey went out and arrived or bounced,
    # people clicked, gave and left, and the first-gift ask was split between its two
    # variants
    assert {step for step, _ in sent} == {"thanked", "update", "ask-first", "ask-additional"}
    assert sent[("ask-first", "long")][0] > 0
    assert sent[("ask-first", "short")][0] > 0
    assert sum(n for n, _ in clicks.values()) > 0
    assert sum(g[0] for g in gifts.values()) > 0
    assert sum(n for (n,) in bounced.values()) > 0
    # And the provider reported the others delivered, but those of the last instant
    for key, (n,) in sent.items():
        assert 0.9 * n <= delivered.get(key, (0,))[0] + bounced.get(key, (0,))[0] <= n
    assert {r["step"] for r in stats["ab"]} == {"ask-first"}
    assert stats["totals"]["one_off_cents"] == sum(g[2] for g in gifts.values())

    # And nobody real is in it: generated addresses, at the documentation domains
    assert all(parse_email(a).rpartition("@")[2] in DOMAINS for a in addresses)


@pytest.mark.parametrize("project", BACKENDS, indirect=True)
def test_a_database_holding_a_campaign_is_refused_then_emptied_with_force(
    project: Path,
) -> None:
    # Given a database holding a signature
    engine = make_engine(get_settings().database_url)
    with make_sessionmaker(engine).begin() as session:
        _, key = apikeys.create(session, role=Role.admin, label="Ada", now=END)
        session.execute(
            text(
                "INSERT INTO supporters (email, locale, created_at) "
                "VALUES ('someone@example.org', 'fr', :now)"
            ),
            {"now": END},
        )

    # When the demo is asked to fill it
    refused = runner.invoke(app, ["demo", "--signatures", "1000", "--now", END.isoformat()])

    # Then it refuses, saying what the database holds and what to do
    assert refused.exit_code == 1
    assert "already holds 1 supporter(s)" in refused.output
    assert "--force" in refused.output

    # And with --force it is emptied first, keeping the staff's keys
    with make_sessionmaker(engine).begin() as session:
        refuse_filled(session, force=True, where="")
        assert contents.held(session).empty
        assert apikeys.authenticate(session, key) is not None
    engine.dispose()


def test_emails_marked_sent_carry_the_version_their_links_resolve_against(
    session: Session,
) -> None:
    # Given a queued update and a queued ask, and the update template's version stored
    # with its links as a send stores them
    update, ask = engagement.emails(
        session, END, [("j", "update", None), ("j", "ask", "short")], status="queued"
    )
    links.remember(session, "update", "v-update", ["https://example.org/news"])

    # When the virtual dispatch sends what is due, knowing the update's version only
    sent = virtual.mark_sent(session, now=END, versions={"update": "v-update"})

    # Then each email is sent at its due time, with what a reader can react to
    assert {(e.id, e.step_id, e.variant, e.at) for e in sent} == {
        (update, "update", None, END),
        (ask, "ask", "short", END),
    }
    # And a click on the update's link finds its address, as the click route looks it up
    found = links.targets(session, [update, ask])
    assert found[update].urls == {0: "https://example.org/news"}
    assert ask not in found
