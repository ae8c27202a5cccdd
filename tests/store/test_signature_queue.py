"""The group-commit writer behind the signing route, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import Unavailable
from engine.intake.signature_queue import SignatureQueue
from engine.rules.campaigns import ConsentPurpose
from engine.store import petitions
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Consent, Supporter
from tests.factories import petition_def, signer, unique


def _wording_recorded(engine: Engine, email: str) -> str:
    with make_sessionmaker(engine)() as session:
        return session.execute(
            select(Consent.wording_version)
            .join(Supporter, Supporter.id == Consent.supporter_id)
            .where(Supporter.email == email)
        ).scalar_one()


def test_petition_facts_are_read_again_once_they_expire(
    committed_engine: Engine, now: datetime
) -> None:
    sessions = make_sessionmaker(committed_engine)
    declared = petition_def()
    with sessions.begin() as session:
        slug = petitions.upsert(session, declared, now=now).slug
    clock = [now]
    emails = [f"{unique(name)}@example.org" for name in ("before", "cached", "expired")]

    async def scenario() -> None:
        queue = SignatureQueue(
            sessions, clock=lambda: clock[0], secret="s", wait_s=0, facts_ttl_s=1.0
        )
        queue.start()
        try:
            await queue.sign(
                slug, signer(1, email=emails[0], signed_at=now, consents={"updates": True})
            )
            with sessions.begin() as session:  # `mobilise sync` with a new wording
                declared.consents["updates"] = ConsentPurpose(version="v9", wording="Nouveau")
                petitions.upsert(session, declared, now=now)
            clock[0] = now + timedelta(seconds=0.5)
            await queue.sign(
                slug, signer(1, email=emails[1], signed_at=now, consents={"updates": True})
            )
            clock[0] = now + timedelta(seconds=2)
            await queue.sign(
                slug, signer(1, email=emails[2], signed_at=now, consents={"updates": True})
            )
        finally:
            await queue.stop()

    asyncio.run(scenario())

    assert [_wording_recorded(committed_engine, e) for e in emails] == ["v1", "v1", "v9"]


class _StuckDatabase:
    """A session factory whose transactions never start, like a database that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        self.release.wait(timeout=30)
        raise ConnectionError("released")
        yield cast(Session, None)  # pragma: no cover


def test_a_stuck_database_answers_unavailable_within_the_timeout(now: datetime) -> None:
    stuck = _StuckDatabase()

    async def scenario() -> float:
        queue = SignatureQueue(
            cast("sessionmaker[Session]", stuck),
            clock=lambda: now,
            secret="s",
            wait_s=0,
            timeout_s=0.2,
        )
        queue.start()
        started = time.monotonic()
        try:
            with pytest.raises(Unavailable) as refused:
                await queue.sign("any", signer(1, signed_at=now))
            # Told when to try again, like every 503 (the API sends the header)
            assert refused.value.headers["Retry-After"] == "5"
            return time.monotonic() - started
        finally:
            stuck.release.set()
            await queue.stop()

    waited = asyncio.run(scenario())

    assert waited < 2


def test_the_writer_outlives_a_database_that_refuses_connections(now: datetime) -> None:
    # Given a queue whose database refuses every connection
    engine = make_engine("postgresql://postgres@127.0.0.1:1/none")

    async def scenario() -> list[BaseException]:
        queue = SignatureQueue(make_sessionmaker(engine), clock=lambda: now, secret="s", wait_s=0)
        queue.start()
        errors: list[BaseException] = []
        try:
            # When two signatures come one after the other
            for line in (1, 2):
                try:
                    await queue.sign("any-petition", signer(line, signed_at=now))
                except Exception as exc:
                    errors.append(exc)
            return errors
        finally:
            await queue.stop()

    try:
        errors = asyncio.run(scenario())
    finally:
        engine.dispose()

    # Then both are answered with the database's error (not the wait's timeout): the writer
    # survived the first
    assert [type(e).__name__ for e in errors] == ["OperationalError", "OperationalError"]
