"""The SQL a block runs, and each statement's plan: for tests that a read goes through an
index rather than over a whole table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


@contextmanager
def statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and driver parameters) the block runs on the session's connection."""
    seen: list[tuple[str, Any]] = []
    connection = session.connection()

    def before(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", before)


def plan(session: Session, statement: str, parameters: Any, tables: Sequence[str]) -> str:
    """The statement's plan. On PostgreSQL with the statistics of this test's rows in
    `tables`, not of what earlier tests left (rolled back, but seen by autoanalyze); and as
    on a large table: a plan without an index path shows up as a sequential scan."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {', '.join(tables)}")
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN "
    else:
        explain = "EXPLAIN QUERY PLAN "
    rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(" ".join(str(c) for c in row) for row in rows)
