"""Recording signatures set-based: web batches and CSV imports share one pipeline.

Rows go to a per-connection temporary staging table, then a handful of INSERT … SELECT
statements create supporters, signatures (ranked by `seq`), consents and milestones.
No statement here runs once per signer.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

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
    bindparam,
    event,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from engine.rules.campaigns import MAX_CONSENT_PURPOSES
from engine.rules.signers import SignatureRow
from engine.store import events
from engine.store.petitions import PetitionFacts
from engine.store.types import UTCDateTime

# Consents ride in slot columns (one per purpose the petition declares) rather than in a
# row per consent: a 140,000-row import stages 140,000 rows, not 420,000.
_SLOTS = [f"consent_{i}" for i in range(MAX_CONSENT_PURPOSES)]
staging = Table(
    "signature_staging",
    MetaData(),
    Column("line", Integer, primary_key=True),
    Column("email", String(320)),
    Column("first_name", String(100)),
    Column("last_name", String(100)),
    Column("postal_code", String(10)),
    Column("departement", String(3)),
    Column("region", String(40)),
    Column("paper_key", String(64)),
    Column("signed_at", UTCDateTime()),
    *(Column(slot, Boolean) for slot in _SLOTS),
    prefixes=["TEMPORARY"],
)
_FIXED = len(staging.columns) - len(_SLOTS)  # the columns before the consent slots
# The staging columns for a binary COPY, in their order.
_PG_TYPES = ["int4", *["varchar"] * 7, "timestamptz", *["bool"] * len(_SLOTS)]
_ANALYZE_ABOVE = 1_000


@dataclass
class Outcome:
    imported: int = 0
    paper: int = 0
    duplicates: int = 0
    milestones: list[int] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.imported += other.imported
        self.paper += other.paper
        self.duplicates += other.duplicates
        self.milestones += other.milestones


def _sqlite_time(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime reads back (naive UTC).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


_FRESH_STAGING = "mobilise_staging_created"
_watched: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_staging(connection: Connection, *_: object) -> None:
    # A rollback also undoes the CREATE TEMPORARY TABLE made in that transaction.
    connection.info.pop(_FRESH_STAGING, None)


def _staging_ready(connection: Connection) -> None:
    """The temporary table lives as long as the pooled connection: created once, emptied
    after each batch (SQLite simply recreates it: dropping is its fastest way to empty)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{staging.name}")
        connection.execute(CreateTable(staging))
        return
    if connection.engine not in _watched:
        _watched.add(connection.engine)
        event.listen(connection.engine, "rollback", _forget_staging)
        event.listen(connection.engine, "rollback_savepoint", _forget_staging)
    if not connection.info.get(_FRESH_STAGING):
        connection.execute(CreateTable(staging, if_not_exists=True))
        connection.info[_FRESH_STAGING] = True


def _staging_done(connection: Connection, rows: int) -> None:
    if connection.dialect.name != "sqlite":
        # Temporary tables are never vacuumed: TRUNCATE after a large batch; a DELETE is
        # cheaper for a web batch of a few rows.
        verb = "TRUNCATE" if rows > 1_000 else "DELETE FROM"
        connection.exec_driver_sql(f"{verb} {staging.name}")


class Staged(NamedTuple):
    """A batch in the staging table's shape: plain tuples, cheap to pickle, so that an
    import can build them in the process that parses the file."""

    rows: list[tuple[Any, ...]]
    emailed: bool  # some rows have an email
    paper: bool  # some rows are paper signatures


def stage(rows: Sequence[SignatureRow], purposes: Sequence[str], dialect: str) -> Staged:
    """The staging rows of a batch, with the consent slots of `purposes` (in this order).
    SQLite reads timestamps as text: each distinct one is formatted once (exports repeat
    them: a minute's precision, paper sheets dated by the day)."""
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
    emailed = sum(1 for r in rows if r.email is not None)
    return Staged(staged, emailed > 0, emailed < len(rows))


def _load_staging(connection: Connection, rows: list[tuple[Any, ...]], slots: int) -> None:
    """Bulk-load the batch below the ORM: COPY on PostgreSQL, executemany on SQLite. Only
    the consent slots the petition uses are written (the others stay NULL)."""
    _staging_ready(connection)
    names = ", ".join(c.name for c in staging.columns[: _FIXED + slots])
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if connection.dialect.name == "sqlite":
            marks = ", ".join("?" * (_FIXED + slots))
            cursor.executemany(f"INSERT INTO {staging.name} ({names}) VALUES ({marks})", rows)
        else:
            # Binary: the server parses no text (measured: half the time of a text COPY).
            with cursor.copy(f"COPY {staging.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_PG_TYPES[: _FIXED + slots])
                for row in rows:
                    copy.write_row(row)
            if len(rows) > _ANALYZE_ABOVE:
                # Temporary tables get no autovacuum statistics: without a row count the
                # planner guesses nested loops and a 20,000-row batch takes seconds, not
                # tenths. The count is what matters: analysing every column cost more than
                # the COPY (0.3 s a batch, against 0.015 s for one column).
                cursor.execute(f"ANALYZE {staging.name} (line)")
    finally:
        cursor.close()


def _sql(statement: str) -> TextClause:
    """Text SQL with `:now` typed (stored like every other timestamp, UTC) and a rowcount
    that PostgreSQL reports for INSERT … SELECT too."""
    clause = text(statement)
    if ":now" in statement:
        clause = clause.bindparams(bindparam("now", type_=UTCDateTime()))
    return clause.execution_options(preserve_rowcount=True)


# No statement below takes another's result as a parameter: each reads what it needs (the
# count so far) from the petition row, so that PostgreSQL receives the whole batch in one
# pipeline, one round trip (`_execute_all`). The petition row is the lock that ranks
# signatures: taking it first makes `seq` gap-free and the count exact however many
# processes sign at once; until `_SET_COUNT`, its `signature_count` is the count before
# the batch, and the batch's rows are those ranked above it.
_LOCK_PETITION = _sql("UPDATE petitions SET signature_count = signature_count WHERE id = :pid")
_BEFORE = "(SELECT signature_count FROM petitions WHERE id = :pid)"
_SO_FAR = (
    f"{_BEFORE} + (SELECT count(*) FROM signatures WHERE petition_id = :pid AND seq > {_BEFORE})"
)
# ORDER BY email: concurrent batches lock new supporter keys in one order, so never deadlock.
_NEW_SUPPORTERS = _sql(
    "INSERT INTO supporters (email, first_name, last_name, postal_code, departement, region,"
    " locale, created_at) "
    "SELECT email, first_name, last_name, postal_code, departement, region, 'fr', :now "
    "FROM signature_staging WHERE email IS NOT NULL ORDER BY email "
    "ON CONFLICT (email) DO NOTHING"
)
# An import on PostgreSQL inserts only the emails not yet known, without ON CONFLICT:
# speculative insertion costs about 60 % more a row, and DO NOTHING on a known email costs
# as much as an insert (measured on 140,000 rows: 2.0 s against 1.3 s new, 1.3 s against
# 0.2 s known). A signer inserting one of these emails meanwhile makes it fail: see
# `_bulk_supporters`.
_NEW_SUPPORTERS_BULK = _sql(
    "INSERT INTO supporters (email, first_name, last_name, postal_code, departement, region,"
    " locale, created_at) "
    "SELECT email, first_name, last_name, postal_code, departement, region, 'fr', :now "
    "FROM signature_staging st WHERE email IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM supporters x WHERE x.email = st.email) ORDER BY email"
)
# CROSS JOIN fixes SQLite's join order (the staging table drives, the unique indexes are
# probed; the other way round is quadratic); PostgreSQL plans it as an inner join.
# Emailed and paper rows are ranked in two statements so that each count is a rowcount.
_INSERT_SIGNATURES = (
    "INSERT INTO signatures (petition_id, supporter_id, paper_key, seq, signed_at, recorded_at,"
    " source, enrol) "
)
_RANK = f"{_SO_FAR} + ROW_NUMBER() OVER (ORDER BY st.line)"
_EMAILED_FROM = (
    "FROM signature_staging st CROSS JOIN supporters sup WHERE sup.email = st.email "
    "AND NOT EXISTS (SELECT 1 FROM signatures x"
    " WHERE x.petition_id = :pid AND x.supporter_id = sup.id)"
)
_NEW_EMAILED = _sql(
    f"{_INSERT_SIGNATURES}SELECT :pid, sup.id, NULL, {_RANK}, st.signed_at, :now, :source, :enrol "
    + _EMAILED_FROM
)
_NEW_PAPER = _sql(
    "INSERT INTO signatures (petition_id, supporter_id, paper_key, seq, signed_at, recorded_at,"
    " source, enrol) "
    f"SELECT :pid, NULL, st.paper_key, {_SO_FAR} + ROW_NUMBER() OVER (ORDER BY st.line),"
    " st.signed_at, :now, :source, :enrol "
    "FROM signature_staging st "
    "WHERE st.email IS NULL AND NOT EXISTS (SELECT 1 FROM signatures x"
    " WHERE x.petition_id = :pid AND x.paper_key = st.paper_key)"
)


_INSERT_CONSENTS = (
    "INSERT INTO consents (supporter_id, purpose, granted, wording_version, source, recorded_at) "
    "SELECT supporter_id, purpose, granted, version, :label, signed_at FROM ("
)


def _consent_choices(purposes: tuple[str, ...], row: str) -> tuple[str, str]:
    """The granted column (from the slots of `row`) and the relation of purposes to cross
    join, one row per purpose: one statement for every purpose."""
    slots = " ".join(
        f"WHEN {i} THEN {row}.{slot}" for i, slot in enumerate(_SLOTS[: len(purposes)])
    )
    choices = " UNION ALL ".join(
        f"SELECT {i} AS slot, :purpose_{i} AS purpose, :version_{i} AS version"
        for i in range(len(purposes))
    )
    return f"CASE p.slot {slots} END AS granted", f"({choices}) p"


@functools.cache
def _new_consents(purposes: tuple[str, ...]) -> TextClause:
    # Consent travels with the signature it was given on: only the batch's new signatures
    # record it, so a re-import records nothing twice. The staging row and its signature
    # are looked up once, not once per purpose.
    granted, choices = _consent_choices(purposes, "st")
    return _sql(
        f"{_INSERT_CONSENTS}SELECT sig.supporter_id, p.purpose, {granted}, p.version,"
        " sig.signed_at "
        "FROM signature_staging st CROSS JOIN supporters sup CROSS JOIN signatures sig"
        f" CROSS JOIN {choices} "
        "WHERE sup.email = st.email AND sig.petition_id = :pid AND sig.supporter_id = sup.id"
        f" AND sig.seq > {_BEFORE}) AS given WHERE granted IS NOT NULL"
    )


@functools.cache
def _new_emailed_with_consents(purposes: tuple[str, ...]) -> TextClause:
    """PostgreSQL, staging table: the emailed signatures and their consents in one statement,
    from the new rows joined once (the consents no longer join the staging table to
    `supporters` and `signatures` again). Returns the number of signatures inserted."""
    granted, choices = _consent_choices(purposes, "n")
    slots = "".join(f", st.{slot}" for slot in _SLOTS[: len(purposes)])
    return _sql(
        f"WITH new AS MATERIALIZED (SELECT sup.id AS supporter_id, st.signed_at, {_RANK} AS seq"
        f"{slots} {_EMAILED_FROM}), "
        f"signed AS ({_INSERT_SIGNATURES}SELECT :pid, supporter_id, NULL, seq, signed_at, :now,"
        " :source, :enrol FROM new RETURNING 1), "
        f"given AS ({_INSERT_CONSENTS}SELECT n.supporter_id, p.purpose, {granted}, p.version,"
        f" n.signed_at FROM new n CROSS JOIN {choices}) AS given WHERE granted IS NOT NULL) "
        "SELECT count(*) FROM signed"
    )


_SET_COUNT = _sql(f"UPDATE petitions SET signature_count = {_SO_FAR} WHERE id = :pid")


def _reach_milestones(count: str) -> TextClause:
    return _sql(
        "UPDATE milestones SET reached_at = :now, signature_id = (SELECT s.id FROM signatures s"
        " WHERE s.petition_id = milestones.petition_id AND s.seq = milestones.threshold) "
        f"WHERE petition_id = :pid AND reached_at IS NULL AND threshold <= {count} "
        "RETURNING threshold, signature_id"
    )


_REACH_MILESTONES = _reach_milestones(":count")
_REACH_COUNTED = _reach_milestones(_BEFORE)  # after `_SET_COUNT`: the count with the batch


# Below this many rows, PostgreSQL reads the batch from arrays bound to each statement
# rather than from the staging table (sparing the COPY and the emptying), and by index
# probes only: the one right plan for a batch this small. Left to itself on a young
# database (no statistics yet; a temporary table never has any), the planner hashed or
# rescanned all of `supporters` and of the petition's signatures for every batch, and the
# prepared statements kept that plan (bench/README.md: 10.9 -> 2.4 ms a batch of 15).
# The planner settings hold for the batch's statements only.
_INLINE_MAX = _ANALYZE_ABOVE
_PLANNER = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "enable_material")
_PROBE_ONLY = _sql("SELECT " + ", ".join(f"set_config('{p}', 'off', true)" for p in _PLANNER))
# Back to PostgreSQL's defaults, which Mobilise never changes (reading `pg_settings` for
# the configured values cost two milliseconds a batch).
_PLAN_AS_USUAL = _sql("SELECT " + ", ".join(f"set_config('{p}', 'on', true)" for p in _PLANNER))
_ROW_FIELDS = [c.name for c in staging.columns if c.name in SignatureRow._fields]
_inline_clauses: dict[str, TextClause] = {}


def _inline(clause: TextClause, dialect: Dialect) -> TextClause:
    """The statement reading a CTE of the same name as the staging table, from arrays: only
    the columns it reads, since psycopg adapts each array in Python."""
    if clause.text not in _inline_clauses:
        read = [c for c in staging.columns if re.search(rf"\b{c.name}\b", clause.text)]
        arrays = ", ".join(f"CAST(:st_{c.name} AS {c.type.compile(dialect)}[])" for c in read)
        names = ", ".join(c.name for c in read)
        source = f"WITH {staging.name} AS (SELECT * FROM unnest({arrays}) AS st({names})) "
        _inline_clauses[clause.text] = _sql(source + clause.text)
    return _inline_clauses[clause.text]


def _inline_values(rows: Sequence[SignatureRow], purposes: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        f"st_{name}": [getattr(r, name) for r in rows] for name in _ROW_FIELDS
    }
    for slot, purpose in zip(_SLOTS, [*purposes, *[None] * len(_SLOTS)], strict=False):
        values[f"st_{slot}"] = [r.consents.get(purpose) if purpose else None for r in rows]
    return values


@dataclass
class _Done:
    rowcount: int
    rows: list[tuple[Any, ...]]


def _execute_all(
    connection: Connection, steps: dict[str, tuple[TextClause, dict[str, Any]]]
) -> dict[str, _Done]:
    """Run the named statements in order. PostgreSQL gets them in one pipeline: a batch costs
    one round trip instead of one per statement (below the ORM: SQLAlchemy reads each
    result as soon as it executes, which a pipeline cannot do)."""
    if connection.dialect.name != "postgresql":
        done = {}
        for name, (clause, values) in steps.items():
            result = connection.execute(clause, values)
            rows = [tuple(r) for r in result] if result.returns_rows else []
            done[name] = _Done(result.rowcount, rows)
        return done
    driver = connection.connection.driver_connection
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursors = {name: driver.cursor() for name in steps}  # type: ignore[union-attr]
    try:
        try:
            with driver.pipeline():  # type: ignore[union-attr]
                for name, (clause, values) in steps.items():
                    cursors[name].execute(_pg_text(clause, connection.dialect), values)
        except dbapi_error as exc:
            # Raised as SQLAlchemy would (an outage is still an OperationalError, 503).
            raise DBAPIError.instance(
                "signature pipeline", list(steps), exc, dbapi_error, dialect=connection.dialect
            ) from exc
        return {
            name: _Done(c.rowcount, c.fetchall() if c.description else [])
            for name, c in cursors.items()
        }
    finally:
        for cursor in cursors.values():
            cursor.close()


_pg_texts: dict[tuple[str, str], str] = {}
_ARRAY_PARAM = re.compile(r"%\((st_\w+)\)s")


def _pg_text(clause: TextClause, dialect: Dialect) -> str:
    key = (dialect.name, clause.text)
    if key not in _pg_texts:
        # The batch's arrays travel in binary: as text, psycopg escapes them element by
        # element in Python (about a millisecond a batch).
        _pg_texts[key] = _ARRAY_PARAM.sub(r"%(\1)b", str(clause.compile(dialect=dialect)))
    return _pg_texts[key]


def _bulk_supporters(session: Session, now: datetime) -> bool:
    """An import's new supporters on PostgreSQL, the cheap way; False when the batch must
    take the safe form (SQLite, or a signer came in meanwhile with one of these emails)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return False
    # A durable commit per batch buys nothing here: a crash loses at most the last
    # batches, and a re-run imports them again. (SQLite's writes are already NORMAL.)
    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
    # The hashes of a batch's joins then fit in memory rather than spilling to disk.
    connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    try:
        with session.begin_nested():  # the SAVEPOINT is taken with the connection
            session.connection().execute(_NEW_SUPPORTERS_BULK, {"now": now})
    except IntegrityError:
        return False
    return True


def record(
    session: Session,
    *,
    petition: PetitionFacts,
    rows: Sequence[SignatureRow] | Staged,
    now: datetime,
    source: str,
    enrol: bool,
    bulk: bool = False,
) -> Outcome:
    """Record a batch of validated rows, unique by `SignatureRow.key`. Does not commit.

    Statements that a batch cannot need are skipped; on PostgreSQL the rest travel in one
    pipeline, with a web batch's rows bound as arrays: one round trip whatever its size.
    `bulk` (imports) chooses the statements that are cheapest for large batches of mostly
    new signers; an import may hand over rows already `stage`d."""
    purposes = sorted(petition.consent_versions)
    connection = session.connection()
    dialect = connection.dialect.name
    inline = dialect == "postgresql" and not isinstance(rows, Staged) and len(rows) <= _INLINE_MAX
    arrays: dict[str, Any] = {}
    if isinstance(rows, Staged) or not inline:
        batch = rows if isinstance(rows, Staged) else stage(rows, purposes, dialect)
        _load_staging(connection, batch.rows, len(purposes))
        has_email, has_paper, size = batch.emailed, batch.paper, len(batch.rows)
    else:
        arrays = _inline_values(rows, purposes)
        has_email = any(r.email for r in rows)
        has_paper = any(r.email is None for r in rows)
        size = len(rows)

    def staged(clause: TextClause, values: dict[str, Any]) -> tuple[TextClause, dict[str, Any]]:
        return (
            (_inline(clause, connection.dialect), values | arrays) if inline else (clause, values)
        )

    pid = petition.id
    params: dict[str, Any] = {"pid": pid, "now": now, "source": source, "enrol": enrol}
    steps: dict[str, tuple[TextClause, dict[str, Any]]] = {}
    if inline:
        steps["probe"] = (_PROBE_ONLY, {})
    # The bulk form runs ahead of the pipeline: it may need its savepoint.
    if has_email and not (bulk and _bulk_supporters(session, now)):
        steps["supporters"] = staged(_NEW_SUPPORTERS, {"now": now})
    steps["lock"] = (_LOCK_PETITION, {"pid": pid})
    choices: dict[str, Any] = {
        f"{key}_{i}": value
        for i, purpose in enumerate(purposes)
        for key, value in (("purpose", purpose), ("version", petition.consent_versions[purpose]))
    }
    labels = {"pid": pid, "label": f"signature:{source}"}
    # Signatures and consents in one statement where it can be (not SQLite: no INSERT in
    # a WITH); it also spares the consents a second join (bench/README.md).
    together = has_email and bool(purposes) and dialect == "postgresql" and not inline
    if together:
        steps["emailed"] = (
            _new_emailed_with_consents(tuple(purposes)),
            params | labels | choices,
        )
    elif has_email:
        steps["emailed"] = staged(_NEW_EMAILED, params)
    if has_paper:
        steps["paper"] = staged(_NEW_PAPER, params)
    if has_email and purposes and not together:
        steps["consents"] = staged(_new_consents(tuple(purposes)), labels | choices)
    steps["count"] = (_SET_COUNT, {"pid": pid})
    # Always checked (one indexed statement in the same round trip), so that milestones
    # never depend on how fresh the caller's petition facts are.
    steps["milestones"] = (_REACH_COUNTED, {"pid": pid, "now": now})
    if inline:
        steps["plan as usual"] = (_PLAN_AS_USUAL, {})
    done = _execute_all(connection, steps)
    emailed = done["emailed"].rowcount if has_email else 0
    if together:
        emailed = done["emailed"].rows[0][0]
    paper = done["paper"].rowcount if has_paper else 0
    outcome = Outcome(imported=emailed, paper=paper, duplicates=size - emailed - paper)
    outcome.milestones = _announce(session, pid, done["milestones"].rows, now)
    if not inline:
        _staging_done(connection, size)
    return outcome


def check_milestones(session: Session, *, petition_id: int, count: int, now: datetime) -> list[int]:
    """Mark every threshold the count has reached, once; emit `milestone.reached`."""
    reached = (
        session.connection()
        .execute(_REACH_MILESTONES, {"pid": petition_id, "count": count, "now": now})
        .all()
    )
    return _announce(session, petition_id, [tuple(r) for r in reached], now)


def _announce(
    session: Session, petition_id: int, reached: Sequence[tuple[Any, ...]], now: datetime
) -> list[int]:
    for threshold, signature_id in reached:
        events.append(
            session,
            kind="milestone.reached",
            source_key=f"milestone:{petition_id}:{threshold}",
            occurred_at=now,
            petition_id=petition_id,
            payload={"threshold": threshold, "signature_id": signature_id},
        )
    return sorted(t for t, _ in reached)
