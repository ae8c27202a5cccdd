"""Recording signatures, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from engine.rules.campaigns import ConsentPurpose
from engine.rules.signature_rows import SignatureRow
from engine.store import milestones, petitions, signatures, staging
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Consent, Event, Milestone, Petition, Signature, Supporter
from tests.factories import make_petition, petition_def, record_signers, signer, unique


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

    reached = milestones.check(session, petition_id=pid, count=3, now=now)

    assert reached == [2]
    assert milestones.check(session, petition_id=pid, count=3, now=now) == []


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
    # The signer already recorded gave no answer then: signing again, their first answer
    # (a refusal) is recorded with the others'.
    answered = range(1, size)
    expected = {False: sum(i % 2 for i in answered), True: sum(1 - i % 2 for i in answered)}
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


def _history(session: Session, email: str | None) -> list[tuple[str, bool, str, datetime]]:
    return [
        (purpose, bool(granted), version, at)
        for purpose, granted, version, at in session.execute(
            select(Consent.purpose, Consent.granted, Consent.wording_version, Consent.recorded_at)
            .join(Supporter, Supporter.id == Consent.supporter_id)
            .where(Supporter.email == email)
            .order_by(Consent.id)
        )
    ]


# Every way a batch reaches the database: on PostgreSQL a web batch is bound as arrays up to
# 1,000 rows and goes through the staging table above; an import resolves supporters first.
# (SQLite has one way.) Other signers fill the batch to its size.
_PATHS = [(1, False), (1_001, False), (3, True)]
_PATH_IDS = ["web batch", "large web batch", "import batch"]


def _sign(
    session: Session, slug: str, row: SignatureRow, now: datetime, size: int, bulk: bool
) -> None:
    others = [signer(i, domain=unique("o") + ".org", signed_at=now) for i in range(2, size + 1)]
    petition = petitions.facts(session, slug)
    rows: list[SignatureRow] | staging.Staged = [row, *others]
    if bulk:  # staged as an import's parsing process hands them over
        dialect = session.get_bind().dialect.name
        purposes = sorted(petition.consent_versions)
        rows = staging.stage([row, *others], purposes, dialect)
    signatures.record(
        session,
        petition=petition,
        rows=rows,
        now=now,
        source="import" if bulk else "web",
        enrol=False,
        bulk=bulk,
    )


@pytest.mark.parametrize(("size", "bulk"), _PATHS, ids=_PATH_IDS)
def test_a_later_signature_that_grants_a_consent_records_it(
    session: Session, now: datetime, size: int, bulk: bool
) -> None:
    # Given a supporter who signed without answering, and another petition
    slug, other = make_petition(session, now), make_petition(session, now)
    email = f"{unique('later')}@example.org"
    _sign(session, slug, signer(1, email=email, signed_at=now), now, size, bulk)

    # When they sign this petition again a day later granting `updates`, then the other
    # petition two days later granting `fundraising`
    day = timedelta(days=1)
    granted = {"updates": True}
    _sign(
        session,
        slug,
        signer(1, email=email, signed_at=now + day, consents=granted),
        now,
        size,
        bulk,
    )
    later = {"fundraising": True, "updates": True}
    _sign(
        session,
        other,
        signer(1, email=email, signed_at=now + 2 * day, consents=later),
        now,
        size,
        bulk,
    )

    # Then each grant is recorded once, when it was given (the repeated one is not news)
    assert _history(session, email) == [
        ("updates", True, "v1", now + day),
        ("fundraising", True, "v2", now + 2 * day),
    ]


@pytest.mark.parametrize(("size", "bulk"), _PATHS, ids=_PATH_IDS)
def test_no_later_signature_withdraws_a_grant(
    session: Session, now: datetime, size: int, bulk: bool
) -> None:
    # Given a supporter who granted `updates` and refused `fundraising`
    slug = make_petition(session, now)
    email = f"{unique('kept')}@example.org"
    first = {"updates": True, "fundraising": False}
    _sign(session, slug, signer(1, email=email, signed_at=now, consents=first), now, size, bulk)

    # When they sign again later ticking nothing, then saying no to both (a CSV's "non" is
    # as often an unticked box as a refusal)
    hour = timedelta(hours=1)
    _sign(session, slug, signer(1, email=email, signed_at=now + hour), now, size, bulk)
    refused = {"updates": False, "fundraising": False}
    _sign(
        session,
        slug,
        signer(1, email=email, signed_at=now + 2 * hour, consents=refused),
        now,
        size,
        bulk,
    )

    # Then their history is what they first said: no row was added
    assert sorted(_history(session, email)) == [
        ("fundraising", False, "v2", now),
        ("updates", True, "v1", now),
    ]


@pytest.mark.parametrize(("size", "bulk"), _PATHS, ids=_PATH_IDS)
def test_a_grant_counts_only_after_the_refusal_it_follows(
    session: Session, now: datetime, size: int, bulk: bool
) -> None:
    # Given a supporter who refused `updates` on a petition dated now
    slug = make_petition(session, now)
    email = f"{unique('order')}@example.org"
    no = {"updates": False}
    _sign(session, slug, signer(1, email=email, signed_at=now, consents=no), now, size, bulk)

    # When an older sheet says they granted it, then a newer signature grants it
    yes = {"updates": True}
    day = timedelta(days=1)
    _sign(session, slug, signer(1, email=email, signed_at=now - day, consents=yes), now, size, bulk)
    _sign(session, slug, signer(1, email=email, signed_at=now + day, consents=yes), now, size, bulk)

    # Then only the grant given after the refusal is recorded
    assert _history(session, email) == [
        ("updates", False, "v1", now),
        ("updates", True, "v1", now + day),
    ]


def test_a_grant_of_a_new_wording_is_recorded_with_its_version(
    session: Session, now: datetime
) -> None:
    # Given a supporter who granted `updates` under wording v1
    declared = petition_def()
    slug = petitions.upsert(session, declared, now=now).slug
    email = f"{unique('wording')}@example.org"
    yes = {"updates": True}
    record_signers(session, slug, [signer(1, email=email, signed_at=now, consents=yes)], now)

    # When the wording changes and they grant it again a day later
    declared.consents["updates"] = ConsentPurpose(version="v9", wording="Nouvelle formulation")
    petitions.upsert(session, declared, now=now)
    later = now + timedelta(days=1)
    record_signers(session, slug, [signer(1, email=email, signed_at=later, consents=yes)], now)

    # Then the grant of the new wording is on record too
    assert _history(session, email) == [
        ("updates", True, "v1", now),
        ("updates", True, "v9", later),
    ]
