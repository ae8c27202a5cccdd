"""Several dispatch workers on one PostgreSQL database, one of them killed mid-batch.

Given a large queue of thank-you emails, when worker processes drain it concurrently
through the local SendGrid server, then every message reaches the server exactly once
(counted by message id) and every row ends `sent`. When a worker is SIGKILLed mid-batch,
its claims are recovered after their lease: SendGrid's events say which of its messages
arrived, only the others are sent again, and again nothing is lost or doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, update

from engine.store import migrate
from engine.store.db import make_engine
from engine.store.models import OutboxMessage
from tests.backends import fresh_postgres_database
from tests.fakes.sendgrid_server import FakeSendGrid
from tests.volume.outbox_load import counts, fill

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
# Measured on the 2-core test machine: 100,000 messages, three workers, about 60 s.
VOLUME = int(os.environ.get("MOBILISE_TEST_DISPATCH_VOLUME", "100000"))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of its own: the workers commit, and every row they see is this test's."""
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        yield url


def worker(url: str, name: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.volume.worker", url, "--worker", name, *args],
        cwd=ROOT,
    )


def wait_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        assert process.wait(timeout=600) == 0


def test_three_workers_send_every_message_exactly_once(pg_url: str) -> None:
    fill(pg_url, VOLUME, now=datetime.now(UTC))
    with FakeSendGrid(validate=False, keep_bodies=True).running() as server:
        wait_all([worker(pg_url, f"w{i}", "--sendgrid", server.url) for i in range(3)])
        sent = Counter(server.accepted_message_ids())

    assert len(sent) == VOLUME
    assert max(sent.values()) == 1
    assert counts(pg_url) == {"sent": VOLUME}


def test_a_smaller_run_passes_the_schema_validation(pg_url: str) -> None:
    fill(pg_url, 2_500, now=datetime.now(UTC))
    with FakeSendGrid(validate=True).running() as server:
        wait_all([worker(pg_url, f"w{i}", "--sendgrid", server.url) for i in range(3)])
        assert all(r.status == 202 for r in server.requests)
        sent = Counter(server.accepted_message_ids())

    assert len(sent) == 2_500
    assert max(sent.values()) == 1
    assert counts(pg_url) == {"sent": 2_500}


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(pg_url: str) -> None:
    total = 20_000
    fill(pg_url, total, now=datetime.now(UTC))
    with FakeSendGrid(validate=False).running() as server:
        # given a worker killed while it holds claims (after its second request)
        victim = worker(pg_url, "victim", "--sendgrid", server.url, "--batch", "1000")
        server.wait_for_requests(2, timeout=120)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        left = counts(pg_url)
        assert left.get("sending", 0) > 0 or left.get("queued", 0) > 0
        # when another worker runs after the lease: the dead claims become ambiguous
        # (the victim may have sent them) and everything else is sent
        wait_all([worker(pg_url, "w2", "--sendgrid", server.url, "--offset-minutes", "11")])
        # and SendGrid's events (processed) report what the server really received
        received = set(server.accepted_message_ids())
        engine = make_engine(pg_url)
        with engine.begin() as connection:
            connection.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == bindparam("mid"))
                .values(delivery="processed"),
                [{"mid": int(i)} for i in received],
            )
        engine.dispose()
        # then after the ambiguity wait, only the unseen ones are sent again
        wait_all([worker(pg_url, "w3", "--sendgrid", server.url, "--offset-minutes", "45")])
        sent = Counter(server.accepted_message_ids())

    assert len(sent) == total
    assert max(sent.values()) == 1
    assert counts(pg_url) == {"sent": total}
