"""An address erased at its owner's request, seen again (SQLite and PostgreSQL, committed).

Given a supporter erased on request, when an import carries the address, then its row is
refused with the reason in the rejects file; when a web signature carries it, then the
signature counts but the signer comes back without consent and receives nothing.
"""

from __future__ import annotations

import asyncio
import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.intake.signature_imports import import_signatures
from engine.intake.signature_queue import SignatureQueue
from engine.rules.rights import ERASED_REASON
from engine.rules.supporters import email_hash
from engine.store import audit, personal_data, petitions
from engine.store.db import make_sessionmaker
from engine.store.models import Consent, Supporter, Suppression
from tests.factories import petition_def, record_signers, signer, unique

SECRET = "test-secret"


def erased_signer(sessions: sessionmaker[Session], now: datetime) -> tuple[str, str]:
    """(petition slug, the address of a signer who then asked for erasure)."""
    email = f"{unique('gone')}@example.org"
    with sessions.begin() as session:
        slug = petitions.upsert(session, petition_def(), now=now).slug
        record_signers(session, slug, [signer(1, email=email, signed_at=now)], now)
        who = personal_data.find(session, email)
        personal_data.erase(
            session, personal_data.one(who), now=now, actor=audit.CLI, secret=SECRET
        )
    return slug, email


def test_an_import_refuses_an_erased_address(
    committed_engine: Engine, now: datetime, tmp_path: Path
) -> None:
    sessions = make_sessionmaker(committed_engine)
    slug, email = erased_signer(sessions, now)
    kept = f"{unique('kept')}@example.org"
    path = tmp_path / "old-list.csv"
    path.write_text(f"email,first_name\n{email.upper()},Anne\n{kept},Karl\n", encoding="utf-8")

    report = import_signatures(
        sessions, slug=slug, path=path, now=lambda: now, zone=ZoneInfo("Europe/Paris"),
        secret=SECRET,
    )  # fmt: skip

    assert (report.outcome.imported, report.rejected) == (1, 1)
    assert report.rejects_file is not None
    with report.rejects_file.open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        ("2", "email", ERASED_REASON)
    ]
    with sessions() as session:
        assert session.scalar(select(func.count()).where(Supporter.email == email)) == 0
        assert petitions.read(session, slug).count == 2  # the erased signature still counts


def test_a_web_signature_of_an_erased_address_counts_without_consent(
    committed_engine: Engine, now: datetime
) -> None:
    sessions = make_sessionmaker(committed_engine)
    slug, email = erased_signer(sessions, now)

    async def scenario() -> None:
        queue = SignatureQueue(sessions, clock=lambda: now, secret=SECRET, wait_s=0)
        queue.start()
        try:
            await queue.sign(
                slug,
                signer(1, email=email, signed_at=now, consents={"updates": True}),
            )
        finally:
            await queue.stop()

    asyncio.run(scenario())

    with sessions() as session:
        assert petitions.read(session, slug).count == 2
        back = session.scalar(select(Supporter.id).where(Supporter.email == email))
        assert back is not None
        assert session.scalar(select(func.count()).where(Consent.supporter_id == back)) == 0
        # The erasure's suppression now names the new supporter: nothing is sent to them
        assert session.execute(
            select(Suppression.supporter_id, Suppression.reason).where(
                Suppression.email_hash == email_hash(email, SECRET)
            )
        ).all() == [(back, "erased")]
