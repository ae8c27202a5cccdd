"""`mobilise apikey create | list | revoke`: keys for staff (dashboard sign-in and API)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from engine.cli.common import reports_errors, transaction
from engine.errors import Invalid, NotFound
from engine.rules.staff import ROLE_NAMES, Role, parse_role
from engine.store import apikeys, audit

app = typer.Typer(no_args_is_help=True, help="API keys: one per person or client, with a role.")


@app.command("create")
@reports_errors
def create(
    role: str = typer.Option(..., "--role", help=f"one of: {', '.join(ROLE_NAMES)}"),
    label: str = typer.Option("", "--label", help="whose key this is, e.g. a name"),
) -> None:
    """Make a key and print it once: it is stored only as a hash."""
    found = parse_role(role)
    if found is None:
        raise Invalid(
            f"unknown role {role!r}", field="role", hint=f"one of {', '.join(ROLE_NAMES)}"
        )
    now = datetime.now(UTC)
    with transaction() as session:
        key_id, key = apikeys.create(session, role=found, label=label, now=now)
        audit.record(
            session, actor=audit.CLI, action="apikey-create", now=now, detail=_key(key_id, found)
        )
    typer.echo(key)
    typer.echo(
        f"key #{key_id}, role {found.name}: store it now, it cannot be shown again", err=True
    )


@app.command("list")
@reports_errors
def listing() -> None:
    """Every key: id, role, label, created, revoked (never the key)."""
    with transaction() as session:
        rows = apikeys.listing(session)
        for row in rows:
            revoked = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            created = f"{row.created_at:%Y-%m-%d %H:%M}"
            typer.echo(f"#{row.id:<5} {row.role:<10} {created}  {revoked:<24} {row.label}")
    if not rows:
        typer.echo("no API key yet: `mobilise apikey create --role admin`")


@app.command("revoke")
@reports_errors
def revoke(key_id: int = typer.Argument(..., help="the key's number, from `apikey list`")) -> None:
    """Revoke a key: its holder is signed out of the dashboard and refused by the API at once."""
    now = datetime.now(UTC)
    with transaction() as session:
        if not apikeys.revoke(session, key_id, now=now):
            raise NotFound(f"no active key #{key_id}", hint="see `mobilise apikey list`")
        audit.record(session, actor=audit.CLI, action="apikey-revoke", now=now, detail=_key(key_id))
    typer.echo(f"key #{key_id} revoked")


def _key(key_id: int, role: Role | None = None) -> dict[str, object]:
    """What the audit log keeps of a key change: its number (and role), never the key."""
    return {"key": key_id} | ({"role": role.name} if role else {})
