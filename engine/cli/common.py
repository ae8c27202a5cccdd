"""What every command shares: settings, a database, and errors turned into exit code 1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Annotated, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings, get_settings
from engine.errors import Invalid, MobiliseError, Problem
from engine.store.db import make_engine, make_sessionmaker

P = ParamSpec("P")
R = TypeVar("R")

# `--now`, the instant a command acts at: every command that reads or moves time takes it,
# so that a run in virtual time (`tick --now ...`) never mixes with the wall clock.
Now = Annotated[
    str | None,
    typer.Option(
        "--now",
        metavar="ISO8601",
        help="Act at this instant (ISO 8601; without an offset, in the campaign's time zone; "
        "default: the wall clock).",
    ),
]


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print each problem as `file:line: message` on stderr and exit 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MobiliseError as exc:
            for problem in exc.problems:
                typer.echo(f"error: {problem}", err=True)
            raise typer.Exit(1) from exc

    return wrapper


def settings() -> Settings:
    """The configuration; a refused one is an error naming each variable and what is wrong."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = [
            Problem(
                str(e.get("ctx", {}).get("error", e["msg"])),
                field="MOBILISE_" + "_".join(str(p) for p in e["loc"]).upper()
                if e["loc"]
                else None,
            )
            for e in exc.errors()
        ]
        raise Invalid("configuration refused", problems=problems) from None


def parse_now(text: str | None) -> datetime:
    """The instant a `--now` value names, in UTC; the wall clock when there is none."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Invalid(
            f"'{text}' is not an ISO 8601 instant",
            field="--now",
            hint="e.g. 2026-05-13T10:00 or 2026-05-13T08:00:00+00:00",
        ) from exc
    if moment.tzinfo is None:
        # A bare wall-clock time means the campaign's zone, as managers think in it.
        moment = moment.replace(tzinfo=ZoneInfo(settings().timezone))
    return moment.astimezone(UTC)


@contextmanager
def sessions() -> Iterator[sessionmaker[Session]]:
    """A session factory on the configured database; callers own their transactions."""
    engine = make_engine(settings().database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextmanager
def transaction() -> Iterator[Session]:
    """One transaction on the configured database, committed when the block ends."""
    with sessions() as factory, factory.begin() as session:
        yield session
