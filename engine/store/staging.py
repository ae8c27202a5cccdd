"""The signature staging table: a batch's rows, loaded below the ORM (COPY on PostgreSQL,
executemany on SQLite) into a per-connection temporary table, or bound as arrays that
statements read as a CTE of the same name (small batches on PostgreSQL)."""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    TextClause,
    event,
)
from sqlalchemy.schema import CreateTable

from engine.rules.campaigns import MAX_CONSENT_PURPOSES
from engine.rules.signature_rows import SignatureRow
from engine.store.pipeline import sql
from engine.store.types import UTCDateTime

# Consents ride in slot columns (one per purpose the petition declares) rather than in a
# row per consent: a 140,000-row import stages 140,000 rows, not 420,000.
SLOTS = [f"consent_{i}" for i in range(MAX_CONSENT_PURPOSES)]


def _staging(keyed: bool) -> Table:
    return Table(
        "signature_staging",
        MetaData(),
        Column("line", Integer, primary_key=keyed),
        Column("email", String(320)),
        Column("first_name", String(100)),
        Column("last_name", String(100)),
        Column("postal_code", String(10)),
        Column("departement", String(3)),
        Column("region", String(40)),
        Column("paper_key", String(64)),
        Column("signed_at", UTCDateTime()),
        *(Column(slot, Boolean) for slot in SLOTS),
        prefixes=["TEMPORARY"],
    )


# On SQLite `line` is the rowid, which costs nothing. PostgreSQL's copy has no key: lines are
# unique by construction (one a CSV line or web signer), nothing looks a row up by its line,
# and the index cost a tenth of the COPY (10 ms a 20,000-row batch).
table = _staging(keyed=True)
_unkeyed = _staging(keyed=False)
# PostgreSQL, imports: the emailed rows with their supporter resolved (`known`: the
# supporter was there before the batch), filled on the server by `signatures.record`, so
# that the signature statement neither joins `supporters` again nor looks for an earlier
# signature of a supporter created by the batch. Same column names as the staging table.
resolved = Table(
    "signature_resolved",
    MetaData(),
    Column("line", Integer),
    Column("supporter_id", Integer),
    Column("known", Boolean),
    Column("signed_at", UTCDateTime()),
    *(Column(slot, Boolean) for slot in SLOTS),
    prefixes=["TEMPORARY"],
)
_FIXED = len(table.columns) - len(SLOTS)  # the columns before the consent slots
# The staging columns for a binary COPY, in their order.
_PG_TYPES = ["int4", *["varchar"] * 7, "timestamptz", *["bool"] * len(SLOTS)]
ANALYZE_ABOVE = 1_000


def _sqlite_time(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime reads back (naive UTC).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_FRESH_STAGING = "mobilise_staging_created"
_watched: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_staging(connection: Connection, *_: object) -> None:
    # A rollback also undoes the CREATE TEMPORARY TABLE made in that transaction.
    connection.info.pop(_FRESH_STAGING, None)


def _ready(connection: Connection) -> None:
    """The temporary table lives as long as the pooled connection: created once, emptied
    after each batch (SQLite simply recreates it: dropping is its fastest way to empty)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table.name}")
        connection.execute(CreateTable(table))
        return
    if connection.engine not in _watched:
        _watched.add(connection.engine)
        event.listen(connection.engine, "rollback", _forget_staging)
        event.listen(connection.engine, "rollback_savepoint", _forget_staging)
    if not connection.info.get(_FRESH_STAGING):
        connection.execute(CreateTable(_unkeyed, if_not_exists=True))
        connection.execute(CreateTable(resolved, if_not_exists=True))
        connection.info[_FRESH_STAGING] = True


def done(connection: Connection, rows: int) -> None:
    if connection.dialect.name != "sqlite":
        # Temporary tables are never vacuumed: TRUNCATE after a large batch; a DELETE is
        # cheaper for a few rows.
        if rows > 1_000:
            connection.exec_driver_sql(f"TRUNCATE {table.name}, {resolved.name}")
        else:
            connection.exec_driver_sql(f"DELETE FROM {table.name}")
            connection.exec_driver_sql(f"DELETE FROM {resolved.name}")


class Staged(NamedTuple):
    """A batch in the staging table's shape: plain tuples, cheap to pickle, so that an
    import can build them in the process that parses the file."""

    rows: list[tuple[Any, ...]]
    size: int
    emailed: bool  # some rows have an email
    paper: bool  # some rows are paper signatures


def stage(rows: Sequence[SignatureRow], purposes: Sequence[str], dialect: str) -> Staged:
    """The staging rows of a batch, with the consent slots of `purposes` (in this order).
    SQLite reads timestamps as text: each distinct one is formatted once (exports repeat
    them: a minute's precision, paper sheets dated by the day)."""
    emailed = sum(1 for r in rows if r.email is not None)
    staged: list[tuple[Any, ...]]
    if dialect == "sqlite":
        known: dict[datetime, str] = {}

        def stamp(value: datetime) -> str:
            text = known.get(value)
            if text is None:
                text = known[value] = _sqlite_time(value)
            return text

        staged = [(*r[:8], stamp(r[8]), *map(r.consents.get, purposes)) for r in rows]
    else:
        staged = [(*r[:9], *map(r.consents.get, purposes)) for r in rows]
    return Staged(staged, len(rows), emailed > 0, emailed < len(rows))


def load(connection: Connection, batch: Staged, slots: int) -> None:
    """Bulk-load the batch below the ORM: COPY on PostgreSQL, executemany on SQLite. Only
    the consent slots the petition uses are written (the others stay NULL)."""
    _ready(connection)
    names = ", ".join(c.name for c in table.columns[: _FIXED + slots])
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if connection.dialect.name == "sqlite":
            marks = ", ".join("?" * (_FIXED + slots))
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", batch.rows)
        else:
            # Binary: the server parses no text (measured: half the time of a text COPY).
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_PG_TYPES[: _FIXED + slots])
                for row in batch.rows:
                    copy.write_row(row)
            if batch.size > ANALYZE_ABOVE:
                # Temporary tables get no autovacuum statistics: without a row count the
                # planner guesses nested loops and a 20,000-row batch takes seconds, not
                # tenths. The count is what matters: analysing every column cost more than
                # the COPY (0.3 s a batch, against 0.015 s for one column).
                cursor.execute(f"ANALYZE {table.name} (line)")
    finally:
        cursor.close()


# Below this many rows, PostgreSQL reads the batch from arrays bound to each statement
# rather than from the staging table (sparing the COPY and the emptying), and by index
# probes only: the one right plan for a batch this small. Left to itself on a young
# database (no statistics yet; a temporary table never has any), the planner hashed or
# rescanned all of `supporters` and of the petition's signatures for every batch, and the
# prepared statements kept that plan (bench/README.md: 10.9 -> 2.4 ms a batch of 15).
# The planner settings hold for the batch's statements only.
INLINE_MAX = ANALYZE_ABOVE
_ROW_FIELDS = [c.name for c in table.columns if c.name in SignatureRow._fields]


class BatchColumn(list[Any]):
    """A batch's column bound as one array parameter. psycopg sends this type in binary
    (registered below): as text, it escapes the array element by element in Python (about
    a millisecond a batch)."""


psycopg.adapters.register_dumper(BatchColumn, ListBinaryDumper)
_inline_clauses: dict[str, TextClause] = {}


def inline(clause: TextClause, dialect: Dialect) -> TextClause:
    """The statement reading a CTE of the same name as the staging table, from arrays: only
    the columns it reads, since psycopg adapts each array in Python."""
    if clause.text not in _inline_clauses:
        read = [c for c in table.columns if re.search(rf"\b{c.name}\b", clause.text)]
        arrays = ", ".join(f"CAST(:st_{c.name} AS {c.type.compile(dialect)}[])" for c in read)
        names = ", ".join(c.name for c in read)
        source = f"WITH {table.name} AS (SELECT * FROM unnest({arrays}) AS st({names})) "
        _inline_clauses[clause.text] = sql(source + clause.text)
    return _inline_clauses[clause.text]


def inline_values(rows: Sequence[SignatureRow], purposes: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        f"st_{name}": BatchColumn(getattr(r, name) for r in rows) for name in _ROW_FIELDS
    }
    for slot, purpose in zip(SLOTS, [*purposes, *[None] * len(SLOTS)], strict=False):
        values[f"st_{slot}"] = BatchColumn(
            r.consents.get(purpose) if purpose else None for r in rows
        )
    return values
