"""Dispatch bench: 140,000 queued thank-you emails from the outbox to the local SendGrid.

End to end, as `mobilise worker` runs it: claim, the last look (supporters, consents,
suppressions), render per recipient as skeleton + substitutions, SendGrid requests, HTTP, and the
recorded states, by worker processes (`tests.volume.worker`) against the stand-in
server running in a process of its own. The queue is filled untimed beforehand.

    .venv/bin/python -m bench.dispatch_bench [--messages 140000] [--backend sqlite|postgresql]
        [--workers 1] [--batch 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine
from bench.stand_in import sendgrid_stand_in
from engine.store import migrate
from tests.backends import fresh_postgres_database
from tests.volume.outbox_load import counts, fill

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with fresh_postgres_database() as url:
            migrate.upgrade(url)
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        migrate.upgrade(url)
        yield url


def bench(count: int, backend: str, workers: int, batch: int) -> float:
    with database(backend) as url:
        fill(url, count, now=datetime.now(UTC))
        before = _children_cpu()
        with sendgrid_stand_in() as stand_in:
            started = time.perf_counter()
            processes = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.volume.worker",
                        url,
                        "--worker",
                        f"w{i}",
                        "--sendgrid",
                        stand_in.url,
                        "--batch",
                        str(batch),
                    ],
                    cwd=ROOT,
                )
                for i in range(workers)
            ]
            for process in processes:
                assert process.wait() == 0
            elapsed = time.perf_counter() - started
            workers_cpu = _children_cpu() - before
            requests, received = stand_in.stop()
        server_cpu = _children_cpu() - before - workers_cpu
        states = counts(url)
    assert received == count, (received, count)
    assert states == {"sent": count}, states
    print(
        f"{backend}, {workers} worker(s), claims of {batch}: {count:,} emails in "
        f"{elapsed:.1f} s ({count / elapsed:,.0f}/s, {requests} requests); CPU: workers "
        f"{workers_cpu:.1f} s ({workers_cpu / count * 1e6:.0f} µs an email), server "
        f"{server_cpu:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    return elapsed


def _children_cpu() -> float:
    """User + system CPU seconds of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=140_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(machine(), f"load average {os.getloadavg()[0]:.1f}")
    for _ in range(args.repeat):
        bench(args.messages, args.backend, args.workers, args.batch)


if __name__ == "__main__":
    main()
