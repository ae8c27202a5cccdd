"""Running a batch's statements: typed text SQL, and on PostgreSQL one pipeline (one round
trip) for statements that do not take each other's results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, TextClause, bindparam, text
from sqlalchemy.exc import DBAPIError

from engine.store.types import UTCDateTime


def sql(statement: str) -> TextClause:
    """Text SQL with `:now` typed (stored like every other timestamp, UTC) and a rowcount
    that PostgreSQL reports for INSERT … SELECT too."""
    clause = text(statement)
    if ":now" in statement:
        clause = clause.bindparams(bindparam("now", type_=UTCDateTime()))
    return clause.execution_options(preserve_rowcount=True)


# Index probes only, for a small batch's statements (see `staging.INLINE_MAX`), then back to
# PostgreSQL's defaults, which Mobilise never changes (reading `pg_settings` for the
# configured values cost two milliseconds a batch).
_SETTINGS = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "enable_material")
PROBE_ONLY = sql("SELECT " + ", ".join(f"set_config('{p}', 'off', true)" for p in _SETTINGS))
PLAN_AS_USUAL = sql("SELECT " + ", ".join(f"set_config('{p}', 'on', true)" for p in _SETTINGS))


@dataclass
class Done:
    rowcount: int
    rows: list[tuple[Any, ...]]


def execute_all(
    connection: Connection, steps: dict[str, tuple[TextClause, dict[str, Any]]]
) -> dict[str, Done]:
    """Run the named statements in order. PostgreSQL gets them in one pipeline: a batch costs
    one round trip instead of one per statement (below the ORM: SQLAlchemy reads each
    result as soon as it executes, which a pipeline cannot do)."""
    if connection.dialect.name != "postgresql":
        done = {}
        for name, (clause, values) in steps.items():
            result = connection.execute(clause, values)
            rows = [tuple(r) for r in result] if result.returns_rows else []
            done[name] = Done(result.rowcount, rows)
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
            name: Done(c.rowcount, c.fetchall() if c.description else [])
            for name, c in cursors.items()
        }
    finally:
        for cursor in cursors.values():
            cursor.close()


_pg_texts: dict[tuple[str, str], str] = {}


def _pg_text(clause: TextClause, dialect: Dialect) -> str:
    """The statement as psycopg takes it, compiled once per text."""
    key = (dialect.name, clause.text)
    if key not in _pg_texts:
        _pg_texts[key] = str(clause.compile(dialect=dialect))
    return _pg_texts[key]
