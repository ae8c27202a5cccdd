"""Alembic environment: one metadata, SQLite in batch mode."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from engine.store.db import make_engine
from engine.store.models import Base

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    run(given)
else:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by engine.store.migrate"
    engine = make_engine(url)
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
