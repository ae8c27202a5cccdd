"""The funnel of a journey over 10,000,000 events and 1,000,000 supporters, through the
summary rows (engine/store/counts.py), against a full recount from the tables.

Events, written set-based: 3 emails a supporter (thank-you, update, an A/B ask), sent;
2 provider events each (processed, delivered, some bounced or opened) in `events`; clicks
on 30 % of the emails (a tenth flagged automated); a gift on 10 % of the asks (a fifth
monthly). At the default scale that is 3 M emails + 6 M provider events + 0.9 M clicks +
0.1 M gifts = 10 M events for 1 M supporters. `--scale 0.1` runs a tenth of it.

It times: filling the summary rows from scratch (`counts.rebuild`, what `mobilise stats
--rebuild` does), the funnel read (summary rows + petition count + rates and A/B verdicts,
the median of 20 runs), what keeping them exact costs a dispatch batch and a webhook
batch, and, for comparison, the full recount the summary rows replace.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.common import SLUG, Timer, fresh_database, machine
from engine.rules.journeys import Journey
from engine.stats.figures import journey_stats
from engine.store import claims, counts, petitions, recounts, step_figures
from engine.store.claims import Outcome
from engine.store.db import make_engine, make_sessionmaker, refresh_statistics
from engine.store.models import Petition

JOURNEY = Journey.model_validate(
    {
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
)
STEPS = ("thanks", "update", "ask")
T = "'2026-05-13 09:30:00'"
SENT = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)


def series(dialect: str, n: int) -> str:
    """A FROM clause yielding i = 1..n."""
    if dialect == "postgresql":
        return f"generate_series(1, {n}) AS s(i)"
    counted = f"SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}"
    return f"(WITH RECURSIVE s(i) AS ({counted}) SELECT i FROM s)"


def generate(session: Session, supporters: int) -> dict[str, int]:
    dialect = session.get_bind().dialect.name
    stamp = f"CAST({T} AS TIMESTAMP WITH TIME ZONE)" if dialect == "postgresql" else T
    false, true = ("false", "true") if dialect == "postgresql" else ("0", "1")
    run = session.execute
    run(
        text(
            "INSERT INTO supporters (id, email, locale, created_at) SELECT i,"
            f" 'b' || i || '@example.org', 'fr', {stamp} FROM {series(dialect, supporters)}"
        )
    )
    for offset, step in enumerate(STEPS):
        variant = "CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END" if step == "ask" else "NULL"
        run(
            text(
                "INSERT INTO outbox (id, enrolment_id, step_id, supporter_id, journey_id,"
                " journey_version_id, template, variant, transactional, status, due_at,"
                " created_at, sent_at, attempts, delivery, delivery_at) "
                f"SELECT i + {offset * supporters}, i, '{step}', i, 'bench-journey', 1, '{step}',"
                f" {variant}, {false}, 'sent', {stamp}, {stamp}, {stamp}, 1,"
                " CASE WHEN i % 50 = 0 THEN 'bounce' WHEN i % 7 = 0 THEN 'open'"
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
    run(
        text(
            "INSERT INTO donations (supporter_id, amount_cents, currency, donated_at, frequency,"
            " external_id, recorded_at, message_id, attributed_by) "
            "SELECT supporter_id, 2000 + (id % 5) * 1000, 'EUR', "
            f"{stamp}, CASE WHEN id % 50 = 1 THEN 'monthly' ELSE 'one-off' END, 'g' || id,"
            f" {stamp}, id, 'reference' FROM outbox WHERE step_id = 'ask' AND id % 10 = 1"
        )
    )
    run(text(f"UPDATE petitions SET signature_count = {supporters} WHERE slug = '{SLUG}'"))
    found = {
        table: int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        for table in ("supporters", "outbox", "events", "clicks", "donations")
    }
    refresh_statistics(session, "supporters", "outbox", "events", "clicks", "donations")
    return found


def funnel(session: Session) -> object:
    """What `GET /api/journeys/{id}/stats` computes from the summary rows."""
    petition = petitions.read(session, SLUG)
    return journey_stats(
        JOURNEY,
        petition=SLUG,
        signatures=petition.count,
        milestones=[(m.threshold, m.reached_at) for m in petition.milestones],
        rows=counts.read(session, JOURNEY.id),
        people={},
        days=[],
        unattributed=step_figures.StepFigures(),
    )


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
            assert session.get(Petition, 1) is not None
            for _ in range(20):
                start = time.perf_counter()
                stats = funnel(session)
                timings.append(time.perf_counter() - start)
        median = statistics.median(timings) * 1000
        slowest = max(timings) * 1000
        print(f"funnel from the summary rows: median {median:.2f} ms, max {slowest:.2f} ms")
        print(stats.total)  # type: ignore[attr-defined]
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
