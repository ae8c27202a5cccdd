"""`mobilise run --workers 2`: two server processes, each on a listening socket of its own.

Given a migrated database, when `mobilise run --workers 2 --no-scheduler` starts, then two
processes serve the port, each on its own socket (the kernel shares connections out among
them, rather than the first process awake taking every waiting one); a process that dies
is started again; SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from engine.store import migrate
from tests.e2e.live_server import loopback_listener
from tests.store.journey_helpers import ROOT

PAUSE = threading.Event()  # never set: its wait() paces the polling below


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def servers(pid: int) -> list[int]:
    """The server processes of `mobilise run` (not multiprocessing's resource tracker)."""
    found = []
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            found.append(child)
    return found


def listening_sockets(pid: int) -> set[str]:
    """The inodes of the sockets a process holds."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def until(condition: object, seconds: float = 30.0) -> bool:
    for _ in range(int(seconds / 0.1)):
        if callable(condition) and condition():
            return True
        PAUSE.wait(0.1)
    return False


@contextmanager
def mobilise_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    url = f"sqlite:///{tmp_path / 'mobilise.db'}"
    migrate.upgrade(url)
    listener, base = loopback_listener()
    port = listener.getsockname()[1]
    listener.close()
    env = {
        **os.environ,
        "MOBILISE_DATABASE_URL": url,
        "MOBILISE_PROJECT_DIR": str(ROOT),
        "MOBILISE_VAR_DIR": str(tmp_path / "var"),
        "MOBILISE_BASE_URL": base,
    }
    command = [sys.executable, "-m", "engine.cli", "run", "--workers", "2", "--no-scheduler"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_two_processes_serve_on_sockets_of_their_own_and_stop_together(tmp_path: Path) -> None:
    with mobilise_run(tmp_path) as (process, base):
        # when it has started
        assert until(lambda: answers(base) and len(servers(process.pid)) == 2)

        # then two processes serve, each holding sockets the other does not share
        first, second = servers(process.pid)
        assert listening_sockets(first).isdisjoint(listening_sockets(second))
        assert all(answers(base) for _ in range(20))
        # (and no answer names the server's software)
        assert "server" not in httpx.get(f"{base}/healthz", timeout=2).headers

        # and a process that dies is started again
        os.kill(first, signal.SIGKILL)
        assert until(lambda: first not in servers(process.pid) and len(servers(process.pid)) == 2)
        assert until(lambda: answers(base))

        # and SIGTERM stops them all
        running = servers(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]
