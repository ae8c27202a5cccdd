"""What every command shares: settings, a database, and errors turned into exit code 1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings, get_settings
from engine.errors import MobiliseError
from engine.store.db import make_engine, make_sessionmaker

P = ParamSpec("P")
R = TypeVar("R")


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
    return get_settings()


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
