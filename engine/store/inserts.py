"""INSERT … SELECT that skips the rows whose unique key already exists, cheaply.

Two passes may race (several API processes and workers each run one), and a version
migration may put someone back on a step they passed: the set-based inserts of enrolments
and outbox rows must then skip what exists rather than fail the whole pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def insert_skipping(
    session: Session,
    model: Any,
    columns: Sequence[str],
    rows: Select[*tuple[Any, ...]],
    key: Sequence[str],
) -> int:
    """INSERT INTO model (columns) `rows`, skipping rows whose `key` exists; rows inserted.

    On PostgreSQL a plain INSERT runs first, in a savepoint: ON CONFLICT's speculative
    insertion costs one more index probe and one more WAL record per row (measured over a
    million outbox rows: 9.5M against 5.6M buffer hits, 5.05M against 4.05M WAL records,
    about a fifth of the statement). Only when a row exists does the statement run again,
    skipping. (SQLite checks the key while inserting anyway: ON CONFLICT costs it nothing.)
    """
    connection = session.connection()
    postgresql = connection.dialect.name == "postgresql"
    statement = (
        (pg_insert if postgresql else sqlite_insert)(model)
        .from_select(list(columns), rows)
        # SQLAlchemy only keeps UPDATE/DELETE row counts unless asked (psycopg gives -1).
        .execution_options(preserve_rowcount=True)
    )
    if postgresql:
        try:
            with connection.begin_nested():
                return connection.execute(statement).rowcount
        except IntegrityError:
            pass
    skipping = statement.on_conflict_do_nothing(index_elements=list(key))
    return connection.execute(skipping).rowcount
