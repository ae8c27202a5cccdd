"""The staging table's binary COPY, encoded by an import's parsing process (PostgreSQL)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from psycopg.copy import Copy, FileWriter
from sqlalchemy import text

from engine.rules.signers import SignatureRow
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


def test_the_encoded_copy_is_what_psycopg_sends_and_loads_the_same_rows(
    postgresql_url: str, now: datetime
) -> None:
    purposes = ["fundraising", "updates"]
    rows = _rows(now)
    tuples = staging.stage(rows, purposes, "postgresql")
    encoded = staging.stage(rows, purposes, "postgresql", encode=True)
    assert (encoded.size, encoded.emailed, encoded.paper) == (4, True, True)
    engine = make_engine(postgresql_url)
    try:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            # psycopg's own encoding of the same tuples, through its public API.
            sent = io.BytesIO()
            with Copy(driver.cursor(), binary=True, writer=FileWriter(sent)) as copy:
                copy.set_types(staging._PG_TYPES[: staging._FIXED + len(purposes)])
                assert isinstance(tuples.rows, list)
                for row in tuples.rows:
                    copy.write_row(row)
            assert encoded.rows == sent.getvalue()

            loaded = []
            for batch in (tuples, encoded):
                staging.load(connection, batch, len(purposes))
                loaded.append(
                    connection.execute(text("SELECT * FROM signature_staging ORDER BY line")).all()
                )
                staging.done(connection, batch.size)
            connection.rollback()
    finally:
        engine.dispose()
    assert loaded[0] == loaded[1]
    assert [r.signed_at for r in loaded[1]] == [r.signed_at for r in rows]
    assert loaded[1][1].email == "zoé.été@exemple.fr"
