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

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Keys, Secret
from engine.errors import NotFound
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


def sign_on_the_web(
    sessions: sessionmaker[Session], slug: str, email: str, now: datetime, secret: Secret
) -> None:
    """`email` signs `slug` through the web's queue, ticking a consent box."""

    async def scenario() -> None:
        queue = SignatureQueue(sessions, clock=lambda: now, secret=secret, wait_s=0)
        queue.start()
        try:
            await queue.sign(
                slug, signer(1, email=email, signed_at=now, consents={"updates": True})
            )
        finally:
            await queue.stop()

    asyncio.run(scenario())


def assert_back_without_consent(sessions: sessionmaker[Session], email: str) -> None:
    """The address is a supporter again, without consent, and the suppression its erasure
    kept (its hash under SECRET) names them."""
    with sessions() as session:
        back = session.scalar(select(Supporter.id).where(Supporter.email == email))
        assert back is not None
        assert session.scalar(select(func.count()).where(Consent.supporter_id == back)) == 0
        assert session.execute(
            select(Suppression.supporter_id, Suppression.reason).where(
                Suppression.email_hash == email_hash(email, SECRET)
            )
        ).all() == [(back, "erased")]


# After a rotation of the secret key, MOBILISE_SECRET_KEY is a new key and the old one a
# fallback (MOBILISE_SECRET_KEY_FALLBACKS), or, if it leaked, a leaked key
# (MOBILISE_SECRET_KEY_LEAKED), which checks no link: the erasures made before still hold.
ROTATED = Keys("a-new-test-secret", (SECRET,))
LEAKED = Keys("a-new-test-secret", leaked=(SECRET,))
KEYS = pytest.mark.parametrize(
    "secret",
    [SECRET, ROTATED, LEAKED],
    ids=["same key", "key rotated since the erasure", "key leaked since the erasure"],
)


@KEYS
def test_an_import_refuses_an_erased_address(
    committed_engine: Engine, now: datetime, tmp_path: Path, secret: Secret
) -> None:
    sessions = make_sessionmaker(committed_engine)
    slug, email = erased_signer(sessions, now)
    kept = f"{unique('kept')}@example.org"
    path = tmp_path / "old-list.csv"
    path.write_text(f"email,first_name\n{email.upper()},Anne\n{kept},Karl\n", encoding="utf-8")

    report = import_signatures(
        sessions, slug=slug, path=path, now=lambda: now, zone=ZoneInfo("Europe/Paris"),
        secret=secret,
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


@KEYS
def test_a_web_signature_of_an_erased_address_counts_without_consent(
    committed_engine: Engine, now: datetime, secret: Secret
) -> None:
    sessions = make_sessionmaker(committed_engine)
    slug, email = erased_signer(sessions, now)

    sign_on_the_web(sessions, slug, email, now, secret)

    with sessions() as session:
        assert petitions.read(session, slug).count == 2
    # The erasure's suppression now names the new supporter: nothing is sent to them
    assert_back_without_consent(sessions, email)


def test_an_erased_supporter_is_found_by_address_after_a_rotation(
    committed_engine: Engine, now: datetime
) -> None:
    # Given an address erased under the old key
    sessions = make_sessionmaker(committed_engine)
    _, email = erased_signer(sessions, now)

    # When the audit log is asked for it after a rotation, then the erased supporter is found
    with sessions() as session:
        erased = personal_data.find_erased_too(session, email, secret=ROTATED)
        assert erased == personal_data.find_erased_too(session, email, secret=SECRET)
        with pytest.raises(NotFound):
            personal_data.find_erased_too(session, email, secret=ROTATED.current)
