"""Engines and sessions. Callers own transactions: `with sessions.begin() as session:`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here; a relative SQLite path gets its folder."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    # A `file:` URI (`?uri=true`, e.g. `mode=ro`) names an existing file: nothing to make.
    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
    _sqlite_pragmas(engine)
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy's documented recipe) and use WAL so readers never block the writer.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Staging tables and sorts in memory, a 64 MB page cache: bulk imports stay in RAM.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers never deadlock on upgrade.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def connection_of(where: Session | Connection) -> Connection:
    """The connection of a session's transaction, or the connection given: for the store
    functions the click writer calls on the connection it keeps (engine/track/clicks.py)."""
    return where if isinstance(where, Connection) else where.connection()


# A statement that wrote more rows than this leaves the planner's statistics stale.
BULK = 10_000


def refresh_statistics(session: Session, *tables: str) -> None:
    """ANALYZE these tables on PostgreSQL, in the caller's transaction.

    After a bulk write (an import, a pass that enrolled or queued a whole campaign) the
    statistics still describe the empty tables, and PostgreSQL plans the next statements as
    nested loops over "one row": measured at 140,000 signers, the first journey pass took
    641 s instead of a few. Autovacuum comes too late for the next statement. SQLite's
    plans do not depend on statistics here (engine/store reads are written for its rules)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {', '.join(tables)}"))


def no_jit(session: Session) -> None:
    """No JIT compilation for the statements of this transaction, on PostgreSQL: for
    statements that run once, whose estimated cost would otherwise compile them."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("SET LOCAL jit = off")
