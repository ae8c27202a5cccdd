"""Several processes sign at once across a milestone: one record, an exact count."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from engine.store import petitions, signatures
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Event, Milestone, Signature
from tests.factories import petition_def, signer, unique

PROCESSES = 4
BATCHES = 25
BATCH = 4  # 4 processes x 25 batches x 4 rows = 400 signatures


def _sign(
    url: str, slug: str, domain: str, worker: int, start: multiprocessing.synchronize.Barrier
) -> None:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime(2026, 5, 13, tzinfo=UTC)
    start.wait()
    for batch in range(BATCHES):
        rows = [
            signer(i, domain=f"w{worker}b{batch}.{domain}", signed_at=now) for i in range(BATCH)
        ]
        with sessions.begin() as session:
            petition = petitions.facts(session, slug)
            signatures.record(
                session, petition=petition, rows=rows, now=now, source="web", enrol=True
            )
    engine.dispose()


def test_concurrent_signers_cross_a_threshold_exactly_once(
    committed_url: str, committed_engine: Engine
) -> None:
    now = datetime(2026, 5, 13, tzinfo=UTC)
    with make_sessionmaker(committed_engine).begin() as session:
        petition = petitions.upsert(session, petition_def(milestones=(150, 301, 400)), now=now)
        petition_id, slug = petition.id, petition.slug
    domain = unique("c") + ".org"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    workers = [
        context.Process(target=_sign, args=(committed_url, slug, domain, w, start))
        for w in range(PROCESSES)
    ]

    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)

    assert [p.exitcode for p in workers] == [0] * PROCESSES
    total = PROCESSES * BATCHES * BATCH
    with make_sessionmaker(committed_engine)() as session:
        assert petitions.read(session, slug).count == total
        seqs = session.scalars(
            select(Signature.seq).where(Signature.petition_id == petition_id)
        ).all()
        assert sorted(seqs) == list(range(1, total + 1))
        reached = session.execute(
            select(Milestone.threshold, Signature.seq)
            .join(Signature, Signature.id == Milestone.signature_id)
            .where(Milestone.petition_id == petition_id)
            .order_by(Milestone.threshold)
        ).all()
        assert [tuple(r) for r in reached] == [(150, 150), (301, 301), (400, 400)]
        assert (
            session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.petition_id == petition_id, Event.kind == "milestone.reached")
            )
            == 3
        )
