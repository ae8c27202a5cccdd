"""Signatures per day, kept exact as signatures are recorded, on both databases.

Given a petition, when signatures arrive by every way a batch reaches the database (a web
batch bound as arrays on PostgreSQL, a large one through the staging table, an import
that resolves its supporters first and, when the petition asks for consents, records
signatures and consents in one statement), with signers already on record, paper rows,
paper rows seen before and instants either side of UTC midnight, then `signature_days`
holds what counting the signatures finds, and the funnel reads its days from there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.rules.campaigns import PetitionDef
from engine.rules.signature_rows import SignatureRow
from engine.store import funnels, petitions, recounts, signatures, staging
from engine.store.models import SignatureDay
from tests.factories import petition_def, signer, unique

# 23:30 in Paris on the 13th, 21:30 UTC: the days are UTC days.
T0 = datetime(2026, 5, 13, 21, 30, tzinfo=UTC)
MIDNIGHT = datetime(2026, 5, 14, tzinfo=UTC)
DAY = timedelta(days=1)
THIRTEENTH, FOURTEENTH, FIFTEENTH = date(2026, 5, 13), date(2026, 5, 14), date(2026, 5, 15)


def stored(session: Session) -> dict[tuple[int, date], int]:
    rows = session.execute(
        select(SignatureDay.petition_id, SignatureDay.day, SignatureDay.signatures)
    )
    return {(petition, day): n for petition, day, n in rows}


def new_petition(session: Session, *, consents: bool = True) -> str:
    definition = petition_def() if consents else PetitionDef(slug=unique("p"), title="Sans")
    return petitions.upsert(session, definition, now=T0).slug


def record(session: Session, slug: str, rows: list[SignatureRow], *, bulk: bool) -> None:
    """As the web (a list of rows) or an import (rows staged as its parsing hands them
    over) records them."""
    petition = petitions.facts(session, slug)
    batch: list[SignatureRow] | staging.Staged = rows
    if bulk:
        dialect = session.get_bind().dialect.name
        batch = staging.stage(rows, sorted(petition.consent_versions), dialect)
    signatures.record(
        session,
        petition=petition,
        rows=batch,
        now=MIDNIGHT + 2 * DAY,
        source="import" if bulk else "web",
        enrol=False,
        bulk=bulk,
    )


# (rows in the second batch, an import's, the petition asks for consents); on PostgreSQL a
# web batch is bound as arrays up to 1,000 rows and goes through the staging table above.
PATHS = [(4, False, True), (1_001, False, True), (4, True, True), (4, True, False)]
PATH_IDS = ["web batch", "large web batch", "import batch", "import batch, no consents"]


@pytest.mark.parametrize(("size", "bulk", "consents"), PATHS, ids=PATH_IDS)
def test_each_batch_adds_its_new_signatures_to_their_utc_days(
    session: Session, size: int, bulk: bool, consents: bool
) -> None:
    # Given a petition signed on the 13th (UTC) by two people and on one paper sheet
    slug = new_petition(session, consents=consents)
    pid = petitions.facts(session, slug).id
    domain = unique("d") + ".org"
    sheet = unique("k")
    first = [
        signer(1, domain=domain, signed_at=T0 - timedelta(hours=1)),
        signer(2, domain=domain, signed_at=T0),
        signer(3, signed_at=T0, paper_key=sheet),
    ]
    record(session, slug, first, bulk=False)
    # When a batch brings one of them again, the same sheet again, a sheet signed a second
    # before midnight, a signer at midnight, and others the day after
    others = unique("o") + ".org"
    batch = [
        signer(1, domain=domain, signed_at=MIDNIGHT),
        signer(2, signed_at=MIDNIGHT, paper_key=sheet),
        signer(3, signed_at=MIDNIGHT - timedelta(seconds=1), paper_key=unique("k")),
        signer(4, domain=domain, signed_at=MIDNIGHT),
        *[signer(i, domain=others, signed_at=MIDNIGHT + DAY) for i in range(5, size + 1)],
    ]
    record(session, slug, batch, bulk=bulk)
    # Then each new signature counts once, on its UTC day, and the rows are the recount's
    expected = [(THIRTEENTH, 4), (FOURTEENTH, 1)] + ([(FIFTEENTH, size - 4)] if size > 4 else [])
    assert funnels.signatures_by_day(session, slug) == expected
    assert {day: n for (p, day), n in stored(session).items() if p == pid} == dict(expected)
    assert stored(session) == recounts.signature_days(session)


def test_rebuild_counts_the_days_again_from_the_signatures(session: Session) -> None:
    # Given signatures on two days, and their days lost
    slug = new_petition(session)
    domain = unique("d") + ".org"
    record(
        session,
        slug,
        [signer(1, domain=domain, signed_at=T0), signer(2, domain=domain, signed_at=MIDNIGHT)],
        bulk=False,
    )
    expected = stored(session)
    session.execute(delete(SignatureDay))
    # When the summary rows are rebuilt
    recounts.rebuild(session)
    # Then the days are back
    assert stored(session) == expected == recounts.signature_days(session)
    assert funnels.signatures_by_day(session, slug) == [(THIRTEENTH, 1), (FOURTEENTH, 1)]


# --- the property: any sequence of batches, duplicates included

# (paper or not, whose: one of six people or sheets, hours after T0)
rows = st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 60))
batches = st.lists(
    st.tuples(st.booleans(), st.lists(rows, min_size=1, max_size=6)), min_size=1, max_size=6
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=batches)
def test_the_days_equal_a_recount_after_any_batches(
    session: Session, stream: list[tuple[bool, list[Any]]]
) -> None:
    savepoint = session.begin_nested()
    try:
        # Given a petition
        slug = new_petition(session)
        domain = unique("d") + ".org"
        # When any batches arrive, web or imported, people signing again, sheets typed in
        # twice
        for bulk, drawn in stream:
            batch: dict[str, SignatureRow] = {}
            for line, (paper, who, hours) in enumerate(drawn, start=1):
                at = T0 + timedelta(hours=hours)
                key = f"sheet-{who}" if paper else f"s{who}@{domain}"
                row = (
                    signer(line, signed_at=at, paper_key=f"{domain}-{key}")
                    if paper
                    else signer(line, email=key, signed_at=at)
                )
                batch.setdefault(key, row)  # a batch's rows are unique
            record(session, slug, list(batch.values()), bulk=bulk)
        # Then the days are what counting the signatures finds
        assert stored(session) == recounts.signature_days(session)
    finally:
        savepoint.rollback()
