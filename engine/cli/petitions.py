from __future__ import annotations

import typer

import_app = typer.Typer(no_args_is_help=True, help="Import signatures and donations from CSV.")


def sync() -> None:
    """Load journeys/, segments/ and templates/email/ into the database as new versions."""
    typer.echo("sync: nothing yet")
