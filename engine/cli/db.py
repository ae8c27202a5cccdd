from __future__ import annotations

import typer

from engine.cli.common import reports_errors, settings
from engine.store import migrate

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command("upgrade")
@reports_errors
def upgrade(revision: str = "head") -> None:
    """Migrate the database to the latest schema (Alembic)."""
    migrate.upgrade(settings().database_url, revision)
    typer.echo(f"database at {revision}")
