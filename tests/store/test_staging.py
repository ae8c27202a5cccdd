"""The staging table's binary COPY on PostgreSQL (psycopg's `write_row`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from engine.rules.signature_rows import SignatureRow
from engine.store import staging
from engine.store.db import make_engine
from tests.factories import signer


def _rows(now: datetime) -> list[SignatureRow]:
    paris = ZoneInfo("Europe/Paris")
    return [
        signer(1, signed_at=now, consents={"updates": True, "fundraising": False}),
        # Accents, a summer time zone, a second before the year 2000, no consent.
        signer(
            2, email="zoé.été@exemple.fr", signed_at=datetime(2024, 7, 1, 9, 5, tzinfo=paris)
        )._replace(first_name="Zoé", last_name=None, departement="2A", region="Corse"),
        signer(3, signed_at=datetime(2000, 1, 1, tzinfo=UTC) - timedelta(seconds=1)),
        # A paper signature: no email, a key, NULL columns.
        signer(70_000, paper_key="ab" * 32, signed_at=now, consents={"fundraising": True})._replace(
            postal_code=None, departement=None, region=None
        ),
    ]


def test_staged_rows_load_through_psycopgs_binary_copy_intact(
    postgresql_url: str, now: datetime
) -> None:
    # given rows with accents, a summer time, a time before 2000, NULLs and a paper row
    purposes = ["fundraising", "updates"]
    rows = _rows(now)
    batch = staging.stage(rows, purposes, "postgresql")
    assert (batch.size, batch.emailed, batch.paper) == (4, True, True)
    engine = make_engine(postgresql_url)
    try:
        with engine.connect() as connection:
            # when they are loaded into the staging table
            staging.load(connection, batch, len(purposes))
            loaded = connection.execute(text("SELECT * FROM signature_staging ORDER BY line")).all()
            staging.done(connection, batch.size)
            connection.rollback()
    finally:
        engine.dispose()
    # then each value reads back as it was staged
    width = len(batch.rows[0])  # the consent slots past the petition's purposes stay NULL
    assert [tuple(r)[:width] for r in loaded] == batch.rows
    assert {value for r in loaded for value in tuple(r)[width:]} == {None}
    assert [r.signed_at for r in loaded] == [r.signed_at for r in rows]
    assert loaded[1].email == "zoé.été@exemple.fr"
