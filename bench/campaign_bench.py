"""The whole seed campaign as it lives: import, web signers, two ticks a day for two weeks.

What a campaign team runs, in the order it runs it, on a fresh database:
1. `mobilise sync` of the shipped campaign (journeys/, segments/, templates/email/);
2. `mobilise import signatures --enrol` of N signers less the web signers (70 % consent to
   updates, 60 % to fundraising, signed over the three weeks before), then the earlier gifts
   of 5 % of them (one-off and monthly);
3. the last few hundred signers sign over HTTP (`mobilise run`'s API in its own process),
   which carries the petition over 140,000 (below 140,000 signers, the petition's count
   starts high enough for that: signatures gathered earlier);
4. `mobilise tick` at 10:00 and 22:00 Paris time for 14 virtual days: the journey pass,
   then the dispatch to the local SendGrid stand-in (its own process), by one worker on
   SQLite and by `--workers` processes on PostgreSQL;
5. readers answer (bench/engagement.py): clicks on the asks' donation buttons through the
   click route, gifts posted with their reference and imported without, then `mobilise
   stats` prints the funnel.

It prints each tick's time and what it queued and sent, the emails per step, the peak
memory, a machine baseline, the answers and the funnel, and checks the campaign's promises:
every thank-you once, every consented update once, every ask at least three days after its
update, nothing out of order, every click and gift recorded, the summary rows equal to a
recount. The whole campaign's time is steps 2 to 4; the answers are timed apart.
`--quarter` runs N/4 first and prints the ratio of the two totals (linear growth is 4.0).

    .venv/bin/python -m bench.campaign_bench [--signers 140000] [--backend sqlite|postgresql]
        [--workers 2] [--days 14] [--web 400] [--quarter]
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import random
import resource
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bench import engagement
from bench.common import free_port, machine, mobilise_run, pace
from bench.stand_in import sendgrid_stand_in
from engine.config import Settings
from engine.declarations import read
from engine.intake.signature_imports import import_signatures
from engine.periodic import Passes, journeys_pass
from engine.store import donations, journeys, migrate, milestones, petitions
from engine.store.db import make_engine, make_sessionmaker
from engine.store.donations import DonationRow
from engine.store.models import OutboxMessage
from tests.backends import fresh_postgres_database
from tests.fakes.sendgrid_server import API_KEY

ROOT = Path(__file__).resolve().parents[1]
SLUG = "stop-reconnaissance-faciale"
JOURNEY = SLUG
PARIS = ZoneInfo("Europe/Paris")
SECRET = "bench-secret-of-at-least-thirty-two-bytes"
DONATION_PAGE = "https://dons.example.org/don"
FIRST_NAMES = ("Camille", "Léa", "Hugo", "Inès", "Louis", "Chloé", "Nathan", "Manon", "Yanis")
POSTAL_CODES = ("75011", "69003", "13001", "35000", "29200", "33000", "59000", "44000")


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with fresh_postgres_database() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/campaign.db"


def settings_for(url: str, sendgrid: str, connections: int) -> Settings:
    settings = Settings(
        database_url=url,
        transport="sendgrid",
        sendgrid_api_host=sendgrid,
        project_dir=ROOT,
        advance_connections=connections,
        # A virtual fortnight: every tick's messages are "on time" for the dispatcher.
        overdue_after_hours=24.0 * 30,
        # One secret for the emails' links, the click route and the gifts' references.
        secret_key=SECRET,
        donation_url=DONATION_PAGE,
    )
    # The key's field reads SENDGRID_API_KEY (its variable's own name), not a keyword.
    return settings.model_copy(update={"sendgrid_api_key": API_KEY})


# --- dispatch workers: processes that each build their Passes once


_passes: Passes | None = None


def _start_worker(url: str, sendgrid: str, name: str) -> None:
    global _passes
    settings = settings_for(url, sendgrid, 1)
    _passes = Passes(settings, make_sessionmaker(make_engine(url)), worker_id=name)


def _drain(now: datetime) -> dict[str, int]:
    """Dispatch at `now` until this worker finds nothing to claim."""
    assert _passes is not None
    outcomes: dict[str, int] = {}
    while True:
        report = _passes.dispatch(now)
        for status, count in report.outcomes.items():
            outcomes[status] = outcomes.get(status, 0) + count
        if report.batches == 0:
            return outcomes


# --- the campaign's inputs


def write_signers(path: Path, count: int, rng: random.Random, signed_before: datetime) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "email",
                "first_name",
                "last_name",
                "postal_code",
                "signed_at",
                "consent_updates",
                "consent_fundraising",
            ]
        )
        for i in range(count):
            signed = signed_before - timedelta(seconds=rng.randrange(21 * 86400))
            out.writerow(
                [
                    f"signer{i}@example.org",
                    rng.choice(FIRST_NAMES),
                    f"Nom{i}",
                    rng.choice(POSTAL_CODES),
                    signed.isoformat(timespec="seconds"),
                    "oui" if rng.random() < 0.7 else "non",
                    "oui" if rng.random() < 0.6 else "non",
                ]
            )


def earlier_gifts(count: int, rng: random.Random, before: datetime) -> list[DonationRow]:
    """5 % of the signers gave before: a third monthly, the rest one-off."""
    gifts = []
    for i in rng.sample(range(count), count // 20):
        monthly = rng.random() < 1 / 3
        gifts.append(
            DonationRow(
                email=f"signer{i}@example.org",
                amount_cents=rng.choice((1000, 2000, 3000))
                if monthly
                else rng.choice((2000, 3500, 5000, 10000, 15000)),
                currency="EUR",
                donated_at=before - timedelta(days=rng.randrange(30, 700)),
                frequency="monthly" if monthly else "one-off",
                external_id=f"earlier-{i}",
            )
        )
    return gifts


@contextmanager
def api_server(url: str) -> Iterator[str]:
    """`mobilise run --no-scheduler` on a free port, as its own process."""
    env = {
        **os.environ,
        "MOBILISE_DATABASE_URL": url,
        "MOBILISE_PROJECT_DIR": str(ROOT),
        "MOBILISE_TRANSPORT": "memory",
        "MOBILISE_SECRET_KEY": SECRET,
        "MOBILISE_SIGN_RATE_PER_MINUTE": "0",  # every signer comes from this one address
    }
    with mobilise_run(env, free_port()) as base:
        yield base


def sign_on_the_web(base: str, first: int, count: int, rng: random.Random) -> int:
    """`count` people sign through the form, eight at a time, as a busy evening sends them."""
    forms = []
    for i in range(first, first + count):
        form = {"email": f"signer{i}@example.org", "first_name": rng.choice(FIRST_NAMES)}
        if rng.random() < 0.7:
            form["consent_updates"] = "on"
        if rng.random() < 0.6:
            form["consent_fundraising"] = "on"
        forms.append(form)
    with httpx.Client(base_url=base, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        answers = pool.map(
            lambda form: client.post(f"/api/petitions/{SLUG}/signatures", data=form), forms
        )
        return sum(answer.status_code == 303 for answer in answers)  # to the thank-you page


# --- the run


@dataclass
class Tick:
    at: datetime
    seconds: float
    queued: dict[str, int]
    sent: int


@dataclass
class Run:
    signers: int
    backend: str
    import_s: float = 0.0
    web_s: float = 0.0
    ticks: list[Tick] = field(default_factory=list)
    per_step: dict[str, dict[str, int]] = field(default_factory=dict)
    accepted: int = 0
    answered: engagement.Answered = field(default_factory=engagement.Answered)
    problems: list[str] = field(default_factory=list)
    # Peak memory (MB) of this process and of the largest child, once the last tick is
    # done: the campaign's, before the bench's own answers and checks.
    peak: tuple[float, float] = (0.0, 0.0)
    # The same once the answers and the checks are done too (the bench's own work).
    peak_after: tuple[float, float] = (0.0, 0.0)

    @property
    def total_s(self) -> float:
        return self.import_s + self.web_s + sum(t.seconds for t in self.ticks)


def first_tick(now: datetime) -> datetime:
    """10:00 Paris time, the day after `now`."""
    local = now.astimezone(PARIS) + timedelta(days=1)
    return local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)


def campaign(signers: int, backend: str, workers: int, days: int, web: int) -> Run:
    rng = random.Random(140_000)
    run = Run(signers, backend)
    web = min(web, signers)
    with (
        database(backend) as url,
        tempfile.TemporaryDirectory() as folder,
        sendgrid_stand_in() as stand_in,
    ):
        migrate.upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        wall = datetime.now(UTC)
        with sessions.begin() as session:
            seed(session, wall)
            # Below 140,000 signers, the count starts where the web signers carry it over
            # the milestone halfway (signatures gathered before, on paper or elsewhere).
            earlier = max(0, 140_000 - signers + web // 2)
            session.execute(
                text("UPDATE petitions SET signature_count = :n WHERE slug = :slug"),
                {"n": earlier, "slug": SLUG},
            )
        path = Path(folder) / "signers.csv"
        write_signers(path, signers - web, rng, wall)

        started = time.perf_counter()
        report = import_signatures(
            sessions,
            slug=SLUG,
            path=path,
            now=lambda: datetime.now(UTC),
            zone=PARIS,
            enrol=True,
            secret=SECRET,
        )
        with sessions.begin() as session:
            donations.record(session, earlier_gifts(signers - web, rng, wall), now=wall)
        run.import_s = time.perf_counter() - started
        print(
            f"  import {signers - web:,} rows + earlier gifts: {run.import_s:.2f} s "
            f"({report.summary()})"
        )

        with api_server(url) as base:
            started = time.perf_counter()
            signed = sign_on_the_web(base, signers - web, web, rng)
            run.web_s = time.perf_counter() - started
        print(f"  {signed} web signatures over HTTP: {run.web_s:.2f} s")

        connections = workers if backend == "postgresql" else 1
        segments = read(ROOT).conditions
        dispatchers = workers if backend == "postgresql" else 1
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            dispatchers,
            mp_context=context,
            initializer=_start_worker_indexed,
            initargs=(url, stand_in.url, context.Value("i", 0)),
        ) as pool:
            start = first_tick(wall)
            for k in range(days * 2):
                now = start + timedelta(hours=12 * k)
                began = time.perf_counter()
                summary = journeys_pass(
                    sessions, now=now, segments=segments, connections=connections
                )
                journeys_s = time.perf_counter() - began
                outcomes: dict[str, int] = {}
                for done in pool.map(_drain, [now] * dispatchers):
                    for status, count in done.items():
                        outcomes[status] = outcomes.get(status, 0) + count
                seconds = time.perf_counter() - began
                queued = {step: n for (_, step), n in summary.queued.items()}
                tick = Tick(now, seconds, queued, outcomes.get("sent", 0))
                run.ticks.append(tick)
                local = now.astimezone(PARIS).strftime("%a %d %H:%M")
                print(
                    f"  tick {local}: {seconds:6.2f} s (journeys {journeys_s:.2f} s)  "
                    f"queued {queued or '-'}  "
                    f"dispatched {dict(sorted(outcomes.items())) or '-'}"
                )
        _, run.accepted = stand_in.stop()
        run.peak = peak_mb()
        last = start + timedelta(hours=12 * (days * 2 - 1))
        run.answered = engagement.answer(
            sessions, settings_for(url, stand_in.url, 1), after=last, rng=rng, folder=Path(folder)
        )
        with sessions.begin() as session:
            run.per_step = per_step(session)
            run.problems = promises(session) + run.answered.problems
        engine.dispose()
    run.peak_after = peak_mb()
    return run


def _start_worker_indexed(url: str, sendgrid: str, counter: object) -> None:
    with counter.get_lock():  # type: ignore[attr-defined]
        counter.value += 1  # type: ignore[attr-defined]
        index = counter.value  # type: ignore[attr-defined]
    _start_worker(url, sendgrid, f"bench-worker-{index}")


def seed(session: Session, now: datetime) -> None:
    """`mobilise sync` of the shipped campaign."""
    declared = read(ROOT)
    assert not declared.problems, declared.problems
    for campaign in declared.campaigns:
        petition = petitions.upsert(session, campaign.petition, now=now)
        milestones.check(session, petition_id=petition.id, count=petition.signature_count, now=now)
    journeys.sync_journeys(session, declared.campaigns, now)


def per_step(session: Session) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for step, status, count in session.execute(
        select(OutboxMessage.step_id, OutboxMessage.status, func.count()).group_by(
            OutboxMessage.step_id, OutboxMessage.status
        )
    ):
        found.setdefault(step, {})[status] = count
    return found


def promises(session: Session) -> list[str]:
    """What the campaign promised its supporters, checked in SQL over the outbox."""
    problems = []
    checks = {
        "a supporter thanked twice": """
            SELECT count(*) FROM (SELECT supporter_id FROM outbox WHERE step_id = 'thanked'
            AND status = 'sent' GROUP BY supporter_id HAVING count(*) > 1) t""",
        "a signer never thanked": """
            SELECT count(*) FROM enrolments e WHERE NOT EXISTS (SELECT 1 FROM outbox o
            WHERE o.enrolment_id = e.id AND o.step_id = 'thanked' AND o.status = 'sent')""",
        "an update sent without the updates consent": """
            SELECT count(*) FROM outbox o WHERE o.step_id = 'update' AND o.status = 'sent'
            AND COALESCE((SELECT c.granted FROM consents c WHERE c.supporter_id = o.supporter_id
            AND c.purpose = 'updates' ORDER BY c.id DESC LIMIT 1), false) = false""",
        "a consented supporter never updated": """
            SELECT count(*) FROM enrolments e WHERE (SELECT c.granted FROM consents c
            WHERE c.supporter_id = e.supporter_id AND c.purpose = 'updates'
            ORDER BY c.id DESC LIMIT 1) = true AND e.exit_reason IS DISTINCT FROM 'converted'
            AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.enrolment_id = e.id
            AND o.step_id = 'update' AND o.status = 'sent')""",
        "an email sent before the previous step's": """
            SELECT count(*) FROM outbox a JOIN outbox b ON b.enrolment_id = a.enrolment_id
            WHERE a.status = 'sent' AND b.status = 'sent' AND (
              (a.step_id = 'thanked' AND b.step_id = 'update' AND b.sent_at < a.sent_at) OR
              (a.step_id = 'update' AND b.step_id IN ('ask-first', 'ask-additional')
               AND b.sent_at < a.sent_at))""",
    }
    for problem, sql in checks.items():
        if session.get_bind().dialect.name == "sqlite":
            sql = sql.replace("IS DISTINCT FROM", "IS NOT")
        count = session.scalar(text(sql))
        if count:
            problems.append(f"{problem}: {count}")
    # Streamed in enrolment order: at a million signers the rows would not fit in the
    # bench's memory beside the campaign's.
    gaps = session.execute(
        select(OutboxMessage.enrolment_id, OutboxMessage.step_id, OutboxMessage.sent_at)
        .where(
            OutboxMessage.status == "sent",
            OutboxMessage.step_id.in_(("update", "ask-first", "ask-additional")),
        )
        .order_by(OutboxMessage.enrolment_id)
        .execution_options(yield_per=10_000)
    )
    early = 0
    for _, rows in groupby(gaps, key=lambda row: row[0]):
        steps = {step: at for _, step, at in rows if at is not None}
        update = steps.get("update")
        if update is not None and any(
            steps[ask] - update < timedelta(days=3)
            for ask in ("ask-first", "ask-additional")
            if ask in steps
        ):
            early += 1
    if early:
        problems.append(f"an ask less than 3 days after its update: {early}")
    return problems


def baseline() -> str:
    """Bare sqlite3: 140,000 rows inserted through one unique index, then read back."""
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(Path(folder) / "baseline.db")
        started = time.perf_counter()
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
        connection.executemany(
            "INSERT INTO t (email) VALUES (?)", ((f"s{i}@example.org",) for i in range(140_000))
        )
        connection.commit()
        connection.execute("SELECT count(*) FROM t WHERE email LIKE 's1%'").fetchone()
        elapsed = time.perf_counter() - started
        connection.close()
    return f"baseline: bare sqlite3 insert + scan of 140,000 rows {elapsed:.2f} s"


def peak_mb() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, children


def report(run: Run) -> None:
    longest = max((t.seconds for t in run.ticks), default=0.0)
    print(
        f"{run.backend}, {run.signers:,} signers: whole campaign {run.total_s:.1f} s "
        f"(import {run.import_s:.1f} s, web {run.web_s:.1f} s, "
        f"{len(run.ticks)} ticks {sum(t.seconds for t in run.ticks):.1f} s, "
        f"longest tick {longest:.1f} s)"
    )
    for step, states in sorted(run.per_step.items()):
        print(f"  {step:<15} {dict(sorted(states.items()))}")
    print(f"  personalisations accepted by the SendGrid stand-in: {run.accepted:,}")
    me, children = run.peak
    print(
        f"  peak memory of the campaign (import, web, ticks): this process {me:.0f} MB, "
        f"largest child {children:.0f} MB; with the answers and checks after it: "
        f"{run.peak_after[0]:.0f} MB, {run.peak_after[1]:.0f} MB"
    )
    answered = run.answered
    print(
        f"  answers: {answered.clicks:,} clicks on donation buttons "
        f"({answered.clicks_s:.1f} s, eight at a time), "
        f"{answered.gifts_by_reference:,} gifts posted with their reference "
        f"({answered.gifts_s:.1f} s), then `mobilise import donations` "
        f"({answered.import_s:.1f} s): {answered.import_report.replace(chr(10), '; ')}"
    )
    print(f"  `mobilise stats` ({answered.stats_s:.1f} s, a process of its own):")
    print("    " + answered.stats_table.rstrip().replace("\n", "\n    "))
    for problem in run.problems:
        print(f"  BROKEN PROMISE: {problem}")
    if not run.problems:
        print(
            "  promises kept: thanked once, consented updates once, asks ≥ 3 d after; "
            "clicks and gifts recorded, summary rows equal to a recount"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signers", type=int, default=140_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--web", type=int, default=400)
    parser.add_argument(
        "--quarter", action="store_true", help="run N/4 first and print the growth ratio"
    )
    args = parser.parse_args()
    print(machine())
    print(baseline())
    print(f"pace before: {pace():.0f} ms of fixed Python (bench/common.py: lower is faster)")
    runs = []
    sizes = [args.signers // 4, args.signers] if args.quarter else [args.signers]
    for size in sizes:
        print(f"{args.backend}, {size:,} signers, {args.days} days:")
        run = campaign(size, args.backend, args.workers, args.days, args.web)
        report(run)
        print(f"pace after: {pace():.0f} ms")
        runs.append(run)
    if len(runs) == 2:
        print(f"growth: {runs[1].total_s / runs[0].total_s:.2f}× for 4× the signers")


if __name__ == "__main__":
    main()
