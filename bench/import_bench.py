"""Import 140,000 signature rows from CSV on SQLite and PostgreSQL.

    .venv/bin/python -m bench.import_bench [--rows 140000] [--backend sqlite|postgresql|both]

Prints seconds per backend (the figure the issue sets targets for), the baseline of bare
sqlite3 executemany into one table with a unique index, and a re-import of the same file
(must change nothing), each with the CPU time of this process and of the parsing process.
"""

from __future__ import annotations

import argparse
import csv
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import SLUG, Timer, fresh_database, machine
from engine.intake.signature_imports import import_signatures
from engine.store.db import make_engine, make_sessionmaker

FIRST = ["Camille", "Léa", "Hugo", "Zoé", "Lucas", "Inès", "Jules", "Chloé", "Adam", "Manon"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"]
CODES = [
    "75011",
    "13001",
    "69003",
    "31000",
    "33000",
    "20000",
    "20200",
    "97411",
    "59000",
    "67000",
    "44000",
    "06000",
    "35000",
    "34000",
    "21000",
    "29200",
]


def write_csv(path: Path, rows: int) -> None:
    """Realistic export: 1 row in 100 is a paper signature, 1 in 200 is malformed."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(
            [
                "Courriel",
                "Prénom",
                "Nom",
                "Code postal",
                "Date de signature",
                "consent_updates",
                "consent_fundraising",
            ]
        )
        for i in range(rows):
            email = "" if i % 100 == 7 else f"signataire{i}@exemple.fr"
            if i % 200 == 3:
                email = f"signataire{i}@@broken"
            day = 1 + i % 28
            writer.writerow(
                [
                    email,
                    FIRST[i % len(FIRST)],
                    f"{LAST[i % len(LAST)]}-{i}",
                    CODES[i % len(CODES)],
                    f"{day:02d}/05/2024 {i % 24:02d}:{i % 60:02d}",
                    "oui" if i % 3 else "non",
                    "oui" if i % 2 else "",
                ]
            )


def baseline_sqlite(rows: int, folder: Path) -> float:
    """Bare sqlite3: executemany of the same number of rows into one uniquely indexed table."""
    connection = sqlite3.connect(folder / "baseline.db")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT UNIQUE, first TEXT,"
        " last TEXT, postal TEXT, signed TEXT)"
    )
    data = [
        (f"signataire{i}@exemple.fr", "Camille", "Martin", "75011", "2024-05-13 10:00:00")
        for i in range(rows)
    ]
    with Timer() as timer:
        connection.executemany(
            "INSERT INTO t (email, first, last, postal, signed) VALUES (?, ?, ?, ?, ?)", data
        )
        connection.commit()
    connection.close()
    return timer.seconds


def run(backend: str, path: Path) -> tuple[float, float, str]:
    with fresh_database(backend) as url:
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)

        def once() -> tuple[float, str]:
            cpu, children = time.process_time(), _children_cpu()
            with Timer() as timer:
                report = import_signatures(
                    sessions,
                    slug=SLUG,
                    path=path,
                    now=lambda: datetime.now(UTC),
                    zone=ZoneInfo("Europe/Paris"),
                    rejects_path=path.with_suffix(f".{backend}.rej"),
                    secret="bench-secret",
                )
            # CPU seconds of this process and of the parsing one: on a shared machine they
            # compare runs better than the wall clock does.
            used = (
                f"CPU {time.process_time() - cpu:.2f} s + parser {_children_cpu() - children:.2f} s"
            )
            return timer.seconds, f"{report.summary().splitlines()[0]} ({used})"

        first, summary = once()
        second, again = once()
        engine.dispose()
    return first, second, f"{summary} | re-import: {again}"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=140_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "signatures.csv"
        write_csv(path, args.rows)
        print(f"machine: {machine()}; rows: {args.rows}")
        print(
            f"baseline sqlite3 executemany, one unique index: "
            f"{baseline_sqlite(args.rows, Path(folder)):.2f} s"
        )
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        for backend in backends:
            first, second, summary = run(backend, path)
            print(f"{backend}: import {first:.2f} s, re-import {second:.2f} s — {summary}")


if __name__ == "__main__":
    main()
