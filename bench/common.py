"""Shared bench plumbing: a fresh database on either backend, `mobilise run` in its own
process, timing, the machine line."""

from __future__ import annotations

import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.rules.campaigns import ConsentPurpose, PetitionDef
from engine.store import migrate, petitions
from engine.store.db import make_engine, make_sessionmaker, normalise_url

PG_SERVER = os.environ.get(
    "MOBILISE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SLUG = "bench-petition"


def pace() -> float:
    """Milliseconds this machine takes for a fixed piece of pure Python (the best of five):
    its speed at this moment. Here it has been seen to vary by 1.6 times from one hour to
    the next with nothing else running (a virtual machine's shared host), so a bench
    prints it before and after its run, and figures compare at the same pace."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A migrated database holding one petition `bench-petition`; dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            _prepare(url)
            yield url
        return
    server = create_engine(normalise_url(PG_SERVER), isolation_level="AUTOCOMMIT")
    name = f"mobilise_bench_{secrets.token_hex(4)}"
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(PG_SERVER)).set(database=name).render_as_string(False)
    try:
        _prepare(url)
        yield url
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def mobilise_run(env: Mapping[str, str], port: int) -> Iterator[str]:
    """`mobilise run --no-scheduler` on 127.0.0.1:`port` as its own process, with `env`,
    until the block ends (or fails): the address it answers at."""
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--no-scheduler", "--port", str(port)],
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _prepare(url: str) -> None:
    migrate.upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        petitions.upsert(
            session,
            PetitionDef(
                slug=SLUG,
                title="Bench",
                milestones=[100_000, 140_000, 200_000],
                consents={
                    "updates": ConsentPurpose(version="v1", wording="w"),
                    "fundraising": ConsentPurpose(version="v1", wording="w"),
                },
            ),
            now=datetime.now(UTC),
        )
    engine.dispose()


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start
