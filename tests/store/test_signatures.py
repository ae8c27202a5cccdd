"""Recording signatures, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engine.store import petitions, signatures
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Consent, Event, Milestone, Petition, Signature, Supporter
from tests.factories import make_petition, record_signers, signer, unique


def test_a_batch_creates_supporters_and_ranked_signatures(session: Session, now: datetime) -> None:
    slug = make_petition(session, now)
    pid = petitions.facts(session, slug).id
    domain = unique("d") + ".org"
    rows = [signer(i, domain=domain, signed_at=now) for i in range(1, 6)]

    outcome = record_signers(session, slug, rows, now)

    assert (outcome.imported, outcome.duplicates, outcome.paper) == (5, 0, 0)
    seqs = session.scalars(
        select(Signature.seq).where(Signature.petition_id == pid).order_by(Signature.seq)
    ).all()
    assert seqs == [1, 2, 3, 4, 5]
    assert session.get(Petition, pid).signature_count == 5  # type: ignore[union-attr]
    assert (
        session.scalar(
            select(func.count()).select_from(Supporter).where(Supporter.email.like(f"%@{domain}"))
        )
        == 5
    )


def test_signing_twice_is_one_signature_and_one_supporter(session: Session, now: datetime) -> None:
    slug = make_petition(session, now)
    pid = petitions.facts(session, slug).id
    email = f"{unique('x')}@example.org"
    record_signers(session, slug, [signer(1, email=email, signed_at=now)], now)

    again = record_signers(session, slug, [signer(1, email=email, signed_at=now)], now)

    assert (again.imported, again.duplicates) == (0, 1)
    assert petitions.read(session, session.get(Petition, pid).slug).count == 1  # type: ignore[union-attr]
    assert (
        session.scalar(select(func.count()).select_from(Supporter).where(Supporter.email == email))
        == 1
    )


def test_paper_signatures_count_but_create_no_supporter(session: Session, now: datetime) -> None:
    slug = make_petition(session, now)
    pid = petitions.facts(session, slug).id
    rows = [
        signer(1, signed_at=now, paper_key=unique("k")),
        signer(2, signed_at=now, paper_key=unique("k")),
    ]

    outcome = record_signers(session, slug, rows, now)
    again = record_signers(session, slug, rows, now)

    assert (outcome.paper, again.paper, again.duplicates) == (2, 0, 2)
    assert (
        session.scalar(
            select(func.count())
            .select_from(Signature)
            .where(Signature.petition_id == pid, Signature.supporter_id.is_(None))
        )
        == 2
    )


def test_consent_is_recorded_per_purpose_with_the_wording_version(
    session: Session, now: datetime
) -> None:
    slug = make_petition(session, now)
    row = signer(
        1,
        domain=unique("d") + ".org",
        signed_at=now,
        consents={"updates": True, "fundraising": False},
    )

    record_signers(session, slug, [row], now)
    record_signers(session, slug, [row], now)  # a replay records nothing twice

    consents = session.execute(
        select(Consent.purpose, Consent.granted, Consent.wording_version, Consent.source)
        .join(Supporter, Supporter.id == Consent.supporter_id)
        .where(Supporter.email == row.email)
        .order_by(Consent.purpose)
    ).all()
    assert [tuple(c) for c in consents] == [
        ("fundraising", False, "v2", "signature:web"),
        ("updates", True, "v1", "signature:web"),
    ]


def test_a_milestone_is_reached_once_by_the_crossing_signature(
    session: Session, now: datetime
) -> None:
    slug = make_petition(session, now, milestones=(3, 5, 100))
    pid = petitions.facts(session, slug).id
    domain = unique("d") + ".org"

    first = record_signers(
        session, slug, [signer(i, domain=domain, signed_at=now) for i in (1, 2)], now
    )
    second = record_signers(
        session, slug, [signer(i, domain=domain, signed_at=now) for i in (3, 4, 5)], now
    )
    third = record_signers(session, slug, [signer(6, domain=domain, signed_at=now)], now)

    assert (first.milestones, second.milestones, third.milestones) == ([], [3, 5], [])
    reached = session.execute(
        select(Milestone.threshold, Signature.seq, Milestone.reached_at)
        .join(Signature, Signature.id == Milestone.signature_id)
        .where(Milestone.petition_id == pid)
        .order_by(Milestone.threshold)
    ).all()
    assert [(t, s) for t, s, _ in reached] == [(3, 3), (5, 5)]
    kinds = session.scalars(select(Event.kind).where(Event.petition_id == pid)).all()
    assert kinds == ["milestone.reached", "milestone.reached"]


def test_a_milestone_declared_after_the_fact_is_reached_at_the_next_check(
    session: Session, now: datetime
) -> None:
    slug = make_petition(session, now)
    pid = petitions.facts(session, slug).id
    domain = unique("d") + ".org"
    record_signers(session, slug, [signer(i, domain=domain, signed_at=now) for i in (1, 2, 3)], now)
    petition = session.get(Petition, pid)
    assert petition is not None
    session.add(Milestone(petition_id=pid, threshold=2))
    session.flush()

    reached = signatures.check_milestones(session, petition_id=pid, count=3, now=now)

    assert reached == [2]
    assert signatures.check_milestones(session, petition_id=pid, count=3, now=now) == []


def test_recorded_times_read_back_as_the_utc_instant_given(session: Session, now: datetime) -> None:
    slug = make_petition(session, now)
    row = signer(1, domain=unique("d") + ".org", signed_at=now)

    record_signers(session, slug, [row], now)

    created, recorded = session.execute(
        select(Supporter.created_at, Signature.recorded_at)
        .join(Signature, Signature.supporter_id == Supporter.id)
        .where(Supporter.email == row.email)
    ).one()
    assert created == now
    assert recorded == now
    # Stored in one text form on SQLite, so that comparisons between columns hold.
    same = session.scalar(
        select(func.count())
        .select_from(Signature)
        .where(
            Signature.recorded_at == Signature.signed_at,
            Signature.supporter_id.is_not(None),
            Signature.recorded_at >= now,
        )
    )
    assert same is not None
    assert same >= 1


@pytest.mark.parametrize("size", [3, 1_001], ids=["web batch", "bulk batch"])
def test_web_and_bulk_batches_record_alike(session: Session, now: datetime, size: int) -> None:
    # On PostgreSQL a small batch is bound as arrays and a large one goes through the
    # staging table: both must rank, count and record consents the same way.
    slug = make_petition(session, now, milestones=(size,))
    pid = petitions.facts(session, slug).id
    domain = unique("d") + ".org"
    already = signer(1, domain=domain, signed_at=now)
    record_signers(session, slug, [already], now)
    rows = [
        signer(i, domain=domain, signed_at=now, consents={"updates": i % 2 == 0})
        for i in range(1, size)
    ] + [signer(size, signed_at=now, paper_key=unique("k"))]

    outcome = record_signers(session, slug, rows, now)

    assert (outcome.imported, outcome.paper, outcome.duplicates) == (size - 2, 1, 1)
    assert outcome.milestones == [size]
    seqs = session.scalars(select(Signature.seq).where(Signature.petition_id == pid)).all()
    assert sorted(seqs) == list(range(1, size + 1))
    assert petitions.read(session, slug).count == size
    granted = session.execute(
        select(Consent.granted, func.count())
        .join(Supporter, Supporter.id == Consent.supporter_id)
        .where(Supporter.email.like(f"%@{domain}"))
        .group_by(Consent.granted)
        .order_by(Consent.granted)
    ).all()
    # The signer already recorded gave no consent then, and signing again records none.
    new = range(2, size)
    expected = {False: sum(i % 2 for i in new), True: sum(1 - i % 2 for i in new)}
    assert {g: n for g, n in granted} == {g: n for g, n in expected.items() if n}


def test_recording_leaves_the_planner_settings_as_they_were(
    postgresql_url: str, now: datetime
) -> None:
    # PostgreSQL only: SQLite has no planner settings to leave behind.
    engine = make_engine(postgresql_url)
    try:
        with make_sessionmaker(engine)() as session:
            slug = make_petition(session, now)
            rows = [signer(1, domain=unique("d") + ".org", signed_at=now)]

            record_signers(session, slug, rows, now)

            assert session.execute(text("SHOW enable_seqscan")).scalar_one() == "on"
            assert session.execute(text("SHOW enable_hashjoin")).scalar_one() == "on"
            session.rollback()
    finally:
        engine.dispose()
