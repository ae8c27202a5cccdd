"""`mobilise gdpr export | rectify | restrict | erase | retention | log`: supporters' rights.

Each action is logged in the audit log as done by `cli` (docs/privacy.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from engine.cli.common import Now, parse_now, reports_errors, sessions, settings, transaction
from engine.cli.progress import bars
from engine.errors import Unavailable
from engine.periodic import Passes, Skipped, retention_from
from engine.rules.rights import rectification
from engine.send import configured_transport
from engine.store import audit, data_export, personal_data, restrictions, retention

app = typer.Typer(
    no_args_is_help=True, help="Supporters' rights: export, rectify, restrict, erase."
)

Email = typer.Argument(..., help="The supporter's email address.")


@contextmanager
def supporter_transaction(email: str) -> Iterator[tuple[Session, int]]:
    """One transaction and the id of the supporter with this address; an address nobody
    has is an error (exit 1) before the command does anything."""
    with transaction() as session:
        yield session, personal_data.find(session, email)


@app.command("export")
@reports_errors
def export(
    email: str = Email,
    out: Path | None = typer.Option(None, "--out", help="write the JSON here (default: stdout)"),
    now: Now = None,
) -> None:
    """Everything stored about the supporter, as JSON."""
    with supporter_transaction(email) as (session, supporter_id):
        data = data_export.export(session, supporter_id, actor=audit.CLI, now=parse_now(now))
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"supporter {supporter_id}'s data written to {out}", err=True)


@app.command("rectify")
@reports_errors
def rectify(
    email: str = Email,
    new_email: str | None = typer.Option(None, "--email", help="the corrected address"),
    first_name: str | None = typer.Option(None, "--first-name"),
    last_name: str | None = typer.Option(None, "--last-name"),
    postal_code: str | None = typer.Option(None, "--postal-code", help="'' blanks it"),
    now: Now = None,
) -> None:
    """Correct the supporter's address, names or postal code (normalised as signatures are)."""
    given = {
        "email": new_email,
        "first_name": first_name,
        "last_name": last_name,
        "postal_code": postal_code,
    }
    change = rectification({k: v for k, v in given.items() if v is not None})
    with supporter_transaction(email) as (session, supporter_id):
        personal_data.rectify(session, supporter_id, change, actor=audit.CLI, now=parse_now(now))
    typer.echo(f"supporter {supporter_id}: {', '.join(change.fields)} rectified")


@app.command("restrict")
@reports_errors
def restrict(
    email: str = Email,
    lift: bool = typer.Option(False, "--lift", help="lift the restriction instead"),
    now: Now = None,
) -> None:
    """Restrict processing: nothing is sent, no journey step taken; the data is kept."""
    with supporter_transaction(email) as (session, supporter_id):
        changed = restrictions.restrict(
            session, supporter_id, actor=audit.CLI, now=parse_now(now), lift=lift
        )
    if lift:
        typer.echo(
            f"supporter {supporter_id}: " + ("restriction lifted" if changed else "not restricted")
        )
    else:
        typer.echo(
            f"supporter {supporter_id}: " + ("restricted" if changed else "already restricted")
        )


@app.command("erase")
@reports_errors
def erase(
    email: str = Email,
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
    now: Now = None,
) -> None:
    """Erase the supporter's personal data for good; counts and statistics stay exact."""
    if not yes:
        typer.confirm(f"Erase {email} for good?", abort=True)
    config = settings()
    with supporter_transaction(email) as (session, supporter_id):
        done = personal_data.erase(
            session,
            personal_data.one(supporter_id),
            now=parse_now(now),
            actor=audit.CLI,
            secret=config.keys,
        )
    copies = configured_transport.forget_copies(config, done.message_ids)
    typer.echo(f"supporter {supporter_id} erased; {copies} .eml copie(s) deleted")


@app.command("retention")
@reports_errors
def retention_pass(
    dry_run: bool = typer.Option(False, "--dry-run", help="report only, change nothing"),
    now: Now = None,
) -> None:
    """Anonymise the supporters past the retention period (MOBILISE_RETENTION_DAYS after
    their last signature, click or gift; donors MOBILISE_DONOR_RETENTION_DAYS after their
    last gift)."""
    moment = parse_now(now)
    config = settings()
    if dry_run:
        with transaction() as session:
            found = retention.report(session, retention_from(config), moment)
    else:
        with sessions() as factory, bars() as progress:
            ran = Passes(config, factory).retention(moment, progress=progress)
        if isinstance(ran, Skipped):
            raise Unavailable(
                "the retention pass is running in another process",
                hint="a scheduler (`mobilise run` or `mobilise worker`) is running it now; "
                "try again when it is done",
            )
        found = ran
    verb = "would anonymise" if dry_run else "anonymised"
    typer.echo(f"retention at {moment.isoformat()}")
    typer.echo(f"  past the contact period  {found.checked}")
    typer.echo(f"  came back since          {found.came_back}")
    typer.echo(f"  donors kept (last gift)  {found.donors_kept}")
    typer.echo(f"  {verb:<24} {found.anonymised}")
    typer.echo(f"  unconfirmed, expired     {found.unconfirmed} (double opt-in signatures)")


@app.command("log")
@reports_errors
def log(email: str | None = typer.Argument(None, help="only this supporter's entries")) -> None:
    """The audit log: who did what, when (supporters by id, never by address). An erased
    supporter is found by the keyed hash of the address their erasure kept."""
    with transaction() as session:
        supporter_id = (
            personal_data.find_erased_too(session, email, secret=settings().keys) if email else None
        )
        entries = audit.entries(session, supporter_id=supporter_id)
    for entry in entries:
        target = f" supporter {entry.supporter_id}" if entry.supporter_id is not None else ""
        detail = f" {json.dumps(entry.detail)}" if entry.detail else ""
        typer.echo(f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.actor:<12} {entry.action}{target}{detail}")
