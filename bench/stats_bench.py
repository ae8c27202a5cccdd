"""The funnel of a journey over 10,000,000 events and 1,000,000 supporters, as
`GET /api/journeys/{id}/stats` computes it (engine/stats/report.py `for_journey`, then its
JSON), against a full recount from the tables.

The database, written set-based: 1 M supporters, each with a signature on the petition
(signed over the six weeks before, most of them early, as a petition's) and an enrolment
in the journey (30 % still active, spread over its steps; the others left it, completed or
unsubscribed); 3 emails a supporter (thank-you, update, an A/B ask), sent; 2 provider
events each (processed, delivered, some bounced or opened) in `events`; clicks on 30 % of
the emails (a tenth flagged automated); a gift on 10 % of the asks (a fifth monthly), and
the earlier gifts of 5 % of the supporters, which no email led to (a third monthly). At the
default scale that is 3 M emails + 6 M provider events + 0.9 M clicks + 0.15 M gifts =
10 M events for 1 M supporters. `--scale 0.1` runs a tenth of it.

It times: filling the summary rows from scratch (`counts.rebuild`, what `mobilise stats
--rebuild` does), the funnel read (the median of 20 runs, with each of its reads alone),
what keeping them exact costs a dispatch batch and a webhook batch, and, for comparison,
the full recount the summary rows replace.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.common import SLUG, Timer, fresh_database, machine
from engine.rules.campaigns import CampaignDef, PetitionDef
from engine.rules.journeys import Journey
from engine.stats import export, report
from engine.store import claims, counts, funnels, journeys, petitions, recounts
from engine.store.claims import Outcome
from engine.store.db import make_engine, make_sessionmaker, refresh_statistics

RAW_JOURNEY: dict[str, object] = {
    "id": "bench-journey",
    "trigger": {"signed": SLUG},
    "steps": [
        {"id": "thanks", "send": {"template": "thanked", "transactional": True}},
        {"id": "until-140000", "wait_until": {"milestone": 140000, "timeout": "30d"}},
        {"id": "update", "send": {"template": "update"}},
        {
            "id": "ask",
            "send": {
                "variants": [
                    {"name": "A", "template": "ask-first"},
                    {"name": "B", "template": "ask-first"},
                ]
            },
        },
    ],
}
JOURNEY = Journey.model_validate(RAW_JOURNEY)
STEPS = ("thanks", "update", "ask")
T = "'2026-05-13 09:30:00'"
# Signatures from here, over the six weeks up to T; the earlier gifts, the day before it.
SIGNED_FROM = "'2026-04-01 00:00:00'"
SIGNING_SECONDS = 42 * 86_400
GAVE = "'2026-03-31 12:00:00'"
SENT = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


def series(dialect: str, n: int) -> str:
    """A FROM clause yielding i = 1..n."""
    if dialect == "postgresql":
        return f"generate_series(1, {n}) AS s(i)"
    counted = f"SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}"
    return f"(WITH RECURSIVE s(i) AS ({counted}) SELECT i FROM s)"


def at(dialect: str, moment: str) -> str:
    return f"CAST({moment} AS TIMESTAMP WITH TIME ZONE)" if dialect == "postgresql" else moment


def later(dialect: str, moment: str, seconds: str) -> str:
    """`moment` plus `seconds` (an integer expression)."""
    if dialect == "postgresql":
        return f"({at(dialect, moment)} + ({seconds}) * INTERVAL '1 second')"
    return f"datetime({moment}, '+' || ({seconds}) || ' seconds')"


def generate(session: Session, supporters: int) -> dict[str, int]:
    dialect = session.get_bind().dialect.name
    stamp = at(dialect, T)
    false, true = ("false", "true") if dialect == "postgresql" else ("0", "1")
    run = session.execute
    petition = petitions.facts(session, SLUG)
    campaign = CampaignDef(
        campaign="bench", petition=PetitionDef(slug=SLUG, title="Bench"), journeys=[RAW_JOURNEY]
    )
    journeys.sync_one(session, JOURNEY, campaign=campaign, now=SENT)
    loaded = journeys.by_id(session, JOURNEY.id)
    assert loaded is not None
    run(
        text(
            "INSERT INTO supporters (id, email, locale, created_at) SELECT i,"
            f" 'b' || i || '@example.org', 'fr', {stamp} FROM {series(dialect, supporters)}"
        )
    )
    # The i-th signer signs at SIGNING_SECONDS * (i / n)²: many on the first days, fewer
    # each day after, in `seq` order.
    offset = f"CAST(i AS BIGINT) * i * {SIGNING_SECONDS} / {supporters * supporters}"
    run(
        text(
            "INSERT INTO signatures (id, petition_id, supporter_id, seq, signed_at, recorded_at,"
            f" source, enrol) SELECT i, {petition.id}, i, i,"
            f" {later(dialect, SIGNED_FROM, offset)}, {stamp}, 'web', {true}"
            f" FROM {series(dialect, supporters)}"
        )
    )
    run(text(f"UPDATE petitions SET signature_count = {supporters} WHERE id = {petition.id}"))
    run(
        text(
            f"UPDATE milestones SET reached_at = {stamp}, signature_id = (SELECT s.id FROM"
            f" signatures s WHERE s.petition_id = {petition.id} AND s.seq = threshold)"
            f" WHERE petition_id = {petition.id} AND threshold <= {supporters}"
        )
    )
    # Where the signers are in the journey: of every 20, six still active (three waiting
    # for the milestone, two for the update, one for the ask), one gone by unsubscribing
    # after the update, thirteen through it.
    place = "i % 20"
    run(
        text(
            "INSERT INTO enrolments (id, journey_id, journey_version_id, supporter_id, entry,"
            " state, step_id, step_at, due_at, entered_at, exited_at, exit_reason, variant) "
            f"SELECT i, '{JOURNEY.id}', {loaded.version_id}, i, 1,"
            f" CASE WHEN {place} BETWEEN 1 AND 6 THEN 'active' ELSE 'exited' END,"
            f" CASE WHEN {place} BETWEEN 1 AND 3 THEN 'until-140000'"
            f" WHEN {place} IN (0, 4, 5) THEN 'update' ELSE 'ask' END,"
            f" {stamp}, CASE WHEN {place} BETWEEN 1 AND 6 THEN {stamp} END, {stamp},"
            f" CASE WHEN {place} NOT BETWEEN 1 AND 6 THEN {stamp} END,"
            f" CASE WHEN {place} = 0 THEN 'unsubscribed'"
            f" WHEN {place} > 6 THEN 'completed' END,"
            f" CASE WHEN {place} > 6 THEN CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END END"
            f" FROM {series(dialect, supporters)}"
        )
    )
    for offset_, step in enumerate(STEPS):
        variant = "CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END" if step == "ask" else "NULL"
        run(
            text(
                "INSERT INTO outbox (id, enrolment_id, step_id, supporter_id, journey_id,"
                " journey_version_id, template, variant, transactional, status, due_at,"
                " created_at, sent_at, attempts, delivery, delivery_at) "
                f"SELECT i + {offset_ * supporters}, i, '{step}', i, '{JOURNEY.id}',"
                f" {loaded.version_id}, '{step}', {variant}, {false}, 'sent', {stamp}, {stamp},"
                f" {stamp}, 1, CASE WHEN i % 50 = 0 THEN 'bounce' WHEN i % 7 = 0 THEN 'open'"
                f" ELSE 'delivered' END, {stamp} FROM {series(dialect, supporters)}"
            )
        )
    emails = len(STEPS) * supporters
    run(
        text(
            "INSERT INTO events (kind, source_key, occurred_at, recorded_at, supporter_id,"
            " payload) "
            "SELECT CASE WHEN i % 2 = 0 THEN 'sendgrid.delivered' ELSE 'sendgrid.processed' END,"
            f" 'sendgrid:' || i, {stamp}, {stamp}, (i % {supporters}) + 1, '{{}}'"
            f" FROM {series(dialect, 2 * emails)}"
        )
    )
    run(
        text(
            "INSERT INTO clicks (message_id, link_position, supporter_id, clicked_at, automated) "
            f"SELECT id, 0, supporter_id, {stamp}, CASE WHEN id % 10 = 0 THEN {true}"
            f" ELSE {false} END FROM outbox WHERE id % 10 IN (0, 3, 6)"
        )
    )
    gift = (
        "INSERT INTO donations (supporter_id, amount_cents, currency, donated_at, frequency,"
        " external_id, recorded_at, message_id, attributed_by) "
    )
    run(
        text(
            f"{gift}SELECT supporter_id, 2000 + (id % 5) * 1000, 'EUR', "
            f"{stamp}, CASE WHEN id % 50 = 1 THEN 'monthly' ELSE 'one-off' END, 'g' || id,"
            f" {stamp}, id, 'reference' FROM outbox WHERE step_id = 'ask' AND id % 10 = 1"
        )
    )
    # The gifts of 5 % of the supporters before any email, a third of them monthly: no
    # email is credited with them (they count in the journey's totals apart).
    gave = at(dialect, GAVE)
    run(
        text(
            f"{gift}SELECT id, 1500 + (id % 4) * 500, 'EUR', {gave},"
            " CASE WHEN id % 3 = 0 THEN 'monthly' ELSE 'one-off' END, 'u' || id, "
            f"{gave}, NULL, NULL FROM supporters WHERE id % 20 = 7"
        )
    )
    tables = (
        "supporters",
        "signatures",
        "enrolments",
        "outbox",
        "events",
        "clicks",
        "donations",
    )
    found = {
        table: int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0) for table in tables
    }
    refresh_statistics(session, *tables)
    return found


def funnel(session: Session) -> dict[str, Any]:
    """What `GET /api/journeys/{id}/stats` computes (engine/api/stats.py): the report,
    then its JSON."""
    return export.as_json(report.for_journey(session, JOURNEY.id))


def parts(session: Session) -> dict[str, float]:
    """Each read of `report.for_journey` alone (milliseconds, the median of 5)."""
    reads: dict[str, Callable[[], object]] = {
        "summary rows": lambda: counts.read(session, JOURNEY.id),
        "people at steps": lambda: funnels.people_at_steps(session, JOURNEY.id),
        "signatures by day": lambda: funnels.signatures_by_day(session, SLUG),
        "unattributed gifts": lambda: funnels.unattributed_gifts(session),
        "petition": lambda: petitions.read(session, SLUG),
    }
    found: dict[str, float] = {}
    for name, read in reads.items():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            read()
            times.append(time.perf_counter() - start)
        found[name] = statistics.median(times) * 1000
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1 M supporters")
    parser.add_argument("--no-recount", action="store_true", help="skip the full recount")
    args = parser.parse_args()
    supporters = int(1_000_000 * args.scale)
    print(f"machine: {machine()}; backend {args.backend}; {supporters:,} supporters")
    with fresh_database(args.backend) as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with Timer() as made, sessions.begin() as session:
            rows = generate(session, supporters)
        events = rows["outbox"] + rows["events"] + rows["clicks"] + rows["donations"]
        print(f"generated {events:,} events ({rows}) in {made.seconds:.1f} s")
        with Timer() as filled, sessions.begin() as session:
            written = recounts.rebuild(session)
            refresh_statistics(session, "message_counts", "step_counts")
        print(f"summary rows filled from scratch: {written} rows in {filled.seconds:.1f} s")
        timings = []
        with sessions.begin() as session:
            for _ in range(20):
                start = time.perf_counter()
                stats = funnel(session)
                timings.append(time.perf_counter() - start)
            alone = parts(session)
        median = statistics.median(timings) * 1000
        slowest = max(timings) * 1000
        print(
            f"GET /api/journeys/{{id}}/stats (report.for_journey + JSON): median {median:.2f} ms,"
            f" max {slowest:.2f} ms"
        )
        print("  its reads alone: " + ", ".join(f"{k} {v:.2f} ms" for k, v in alone.items()))
        days = stats["signatures_by_day"]
        people = {step["id"]: step["people_here"] for step in stats["steps"]}
        print(
            f"  sent {stats['totals']['sent']:,}, gifts {stats['totals']['gifts']:,};"
            f" people at steps {people}; {len(days)} days of signatures,"
            f" {sum(d['signatures'] for d in days):,} in all"
        )
        # What keeping the figures exact costs the hot paths, on the newest 1,000 emails
        # (three times, each in a transaction rolled back): the dispatcher recording them
        # sent (its UPDATE, and the steps' `sent` grown by what it moved), then a webhook
        # batch of their deliveries (`counts.refresh`, their message_counts rows new).
        recorded, refreshed = [], []
        for start in range(1, 4):
            ids = list(
                range(rows["outbox"] - start * 1000 + 1, rows["outbox"] - (start - 1) * 1000 + 1)
            )
            listed = ",".join(map(str, ids))
            with sessions() as session, session.begin():
                session.execute(
                    text(
                        "UPDATE outbox SET status = 'sending', claimed_by = 'bench'"
                        f" WHERE id IN ({listed})"
                    )
                )
                session.execute(text(f"DELETE FROM message_counts WHERE message_id IN ({listed})"))
                sent = [Outcome(i, "sent", provider_id="bench", sent_at=SENT) for i in ids]
                begun = time.perf_counter()
                claims.record(session, sent, worker_id="bench")
                recorded.append(round((time.perf_counter() - begun) * 1000))
                begun = time.perf_counter()
                counts.refresh(session, ids)
                refreshed.append(round((time.perf_counter() - begun) * 1000))
                session.rollback()
        print(
            f"a dispatch batch of 1,000 recorded sent: {recorded} ms; "
            f"their deliveries refreshed: {refreshed} ms"
        )
        if not args.no_recount:
            with Timer() as again, sessions.begin() as session:
                recounted = recounts.recount(session)
                assert recounted == {
                    (JOURNEY.id, r.step_id, r.variant or ""): r.figures
                    for r in counts.read(session, JOURNEY.id)
                }
            print(
                f"full recount from the tables (the baseline): {again.seconds:.2f} s, same figures"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
