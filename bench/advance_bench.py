"""Advance N due enrolments one step: outbox rows created, enrolment states updated.

    .venv/bin/python -m bench.advance_bench --backend sqlite --rows 1000000
    .venv/bin/python -m bench.advance_bench --backend postgresql --rows 1000000

Every enrolment waits at the seed journey's `update` step (a campaign email that needs the
`updates` consent, under the frequency cap, with the goal and unsubscribe checks); one
`tick` queues the update for all of them and moves them to the 3-day pause. Then the same
work through an ORM loop (one supporter at a time) on a sample, extrapolated.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from engine import declarations
from engine.config import Settings
from engine.periodic import journeys_pass
from engine.store import journeys, migrate
from engine.store.db import make_engine, make_sessionmaker, normalise_url
from engine.store.enrolments import BATCH
from engine.store.models import Consent, Enrolment, OutboxMessage, Suppression

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
PG_SERVER = os.environ.get(
    "MOBILISE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/postgres"
)


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mobilise-bench-") as scratch:
            yield f"sqlite:///{Path(scratch) / 'bench.db'}"
        return
    server = create_engine(normalise_url(PG_SERVER), isolation_level="AUTOCOMMIT")
    name = f"mobilise_bench_{secrets.token_hex(4)}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_url(PG_SERVER)).set(database=name).render_as_string(False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def _series(engine: Engine, rows: int) -> str:
    """A row source of ids 1..rows, in each dialect's fastest form."""
    if engine.dialect.name == "postgresql":
        return f"SELECT g AS n FROM generate_series(1, {rows}) AS g"
    return (
        f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) "
        "SELECT n FROM s"
    )


def populate(engine: Engine, rows: int) -> int:
    """rows supporters with the updates consent, each enrolled and due at `update`."""
    declared = declarations.read(ROOT)
    assert not declared.problems, declared.problems
    created = NOW - timedelta(days=10)
    series = _series(engine, rows)
    day = "'2026-05-10 09:30:00'" if engine.dialect.name == "sqlite" else "'2026-05-10 09:30:00+00'"
    due = "'2026-05-20 10:00:00'" if engine.dialect.name == "sqlite" else "'2026-05-20 10:00:00+00'"
    with Session(engine) as session, session.begin():
        journeys.sync_journeys(session, declared.campaigns, created)
        version_id = journeys.current(session)[0].version_id
        connection = session.connection()
        connection.execute(
            text(
                "INSERT INTO supporters (id, email, locale, created_at) "
                f"SELECT n, 'p' || n || '@example.org', 'fr', {day} FROM ({series}) AS src"
            )
        )
        connection.execute(
            text(
                "INSERT INTO consents (supporter_id, purpose, granted, wording_version, source,"
                f" recorded_at) SELECT n, 'updates', n % 10 <> 0, 'v1', 'bench', {day}"
                f" FROM ({series}) AS src"
            )
        )
        connection.execute(
            text(
                "INSERT INTO enrolments (id, journey_id, journey_version_id, supporter_id, entry,"
                " state, step_id, step_at, due_at, entered_at) "
                f"SELECT n, 'stop-reconnaissance-faciale', {version_id}, n, 1, 'active', 'update',"
                f" {day}, {due}, {day} FROM ({series}) AS src"
            )
        )
    with engine.connect() as connection:
        # Fresh statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` would leave them.
        connection.execute(text("ANALYZE"))
        connection.commit()
    return version_id


def reset_peak_rss() -> None:
    """Start the peak-memory count afresh (Linux): the setup's own peak is not the pass's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset (VmHWM), else since the process started."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def engine_path(engine: Engine, batch: int, connections: int) -> tuple[float, float, int, int]:
    """(wall seconds, this process's CPU seconds, outbox rows, enrolments moved): the
    scheduler's journey pass, split over `connections` transactions on PostgreSQL."""
    declared = declarations.read(ROOT)
    sessions = make_sessionmaker(engine)
    started, cpu = time.perf_counter(), time.process_time()
    summary = journeys_pass(
        sessions, now=NOW, segments=declared.conditions, connections=connections, batch=batch
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with Session(engine) as session:
        queued = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        moved = (
            session.scalar(
                select(func.count()).where(
                    Enrolment.step_id == "pause", Enrolment.state == "active"
                )
            )
            or 0
        )
    assert summary.moved >= moved
    return elapsed, cpu, queued, moved


def orm_path(engine: Engine, sample: int) -> float:
    """The naive shape: load each due enrolment, check it in Python, add a row, flush."""
    started = time.perf_counter()
    with Session(engine) as session, session.begin():
        rows = session.scalars(
            select(Enrolment)
            .where(Enrolment.step_id == "update", Enrolment.state == "active")
            .order_by(Enrolment.id)
            .limit(sample)
        ).all()
        for enrolment in rows:
            consented = session.scalar(
                select(Consent.granted)
                .where(Consent.supporter_id == enrolment.supporter_id, Consent.purpose == "updates")
                .order_by(Consent.id.desc())
                .limit(1)
            )
            blocked = session.scalar(
                select(func.count()).where(Suppression.supporter_id == enrolment.supporter_id)
            )
            session.add(
                OutboxMessage(
                    enrolment_id=enrolment.id,
                    step_id="update",
                    supporter_id=enrolment.supporter_id,
                    journey_id=enrolment.journey_id,
                    journey_version_id=enrolment.journey_version_id,
                    template="update",
                    variant=None,
                    transactional=False,
                    status="queued" if consented and not blocked else "suppressed",
                    reason=None if consented else "no-consent:updates",
                    due_at=NOW,
                    created_at=NOW,
                )
            )
            enrolment.step_id = "pause"
            enrolment.step_at = NOW
            enrolment.due_at = NOW + timedelta(days=3)
            session.flush()
    return time.perf_counter() - started


def raw_baseline(engine: Engine) -> float:
    """The machine's speed right now: one bare INSERT … SELECT and one UPDATE over the same
    number of rows into an unindexed scratch table (the issue's reference measurement)."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE scratch (id BIGINT, supporter_id BIGINT, x INT)"))
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO scratch SELECT id, supporter_id, 0 FROM enrolments"))
        connection.execute(text("UPDATE scratch SET x = x + 1"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=5_000, help="ORM loop sample size")
    parser.add_argument("--batch", type=int, default=BATCH, help="ids per statement window")
    parser.add_argument(
        "--connections",
        type=int,
        default=Settings().advance_connections,
        help="PostgreSQL transactions the advance runs on at once (MOBILISE_ADVANCE_CONNECTIONS)",
    )
    args = parser.parse_args()
    with database(args.backend) as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            populate(engine, args.rows)
            print(f"setup: {args.rows} due enrolments in {time.perf_counter() - started:.1f} s")
            baseline = raw_baseline(engine)
            print(
                f"bare INSERT … SELECT + UPDATE of {args.rows} rows (machine speed now): "
                f"{baseline:.2f} s"
            )
            engine.dispose()  # the pass starts on a fresh connection, as a worker's would
            reset_peak_rss()
            elapsed, cpu, queued, moved = engine_path(engine, args.batch, args.connections)
            # SQLite works inside this process, so its CPU time is the pass's own cost even
            # on a shared machine; PostgreSQL's work is in the server process.
            split = f"{args.connections}" if args.backend == "postgresql" else "one"
            print(
                f"set-based tick ({split} transaction(s)): {elapsed:.2f} s "
                f"(this process's CPU {cpu:.2f} s), "
                f"{queued} outbox rows, {moved} moved, peak RSS during the tick "
                f"{peak_rss_mb():.0f} MB, load average {os.getloadavg()[0]:.1f}"
            )
            # The ORM loop works on enrolments the tick has not moved: re-arm a sample.
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM outbox"))
                connection.execute(
                    text("UPDATE enrolments SET step_id = 'update' WHERE id <= :n"),
                    {"n": args.sample},
                )
            orm = orm_path(engine, args.sample)
            per_row = orm / args.sample
            print(
                f"ORM loop: {args.sample} rows in {orm:.2f} s ({per_row * 1e3:.2f} ms/row), "
                f"extrapolated to {args.rows}: {per_row * args.rows:.0f} s "
                f"(x{per_row * args.rows / elapsed:.0f})"
            )
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
