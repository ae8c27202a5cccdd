"""Typed dependencies, declared once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings
from engine.render.library import TemplateLibrary


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error;
    before the answer is sent (`DbSession`'s scope), so that an answer means the write is
    stored."""
    with get_sessions(request).begin() as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_templates(request: Request) -> TemplateLibrary:
    """The process's template library: one compile cache, each version compiled once."""
    library: TemplateLibrary = request.app.state.templates
    return library


# "function": the commit runs as the route returns, before its answer goes out. FastAPI's
# default ran it after the answer was sent: a browser following a sign-in's redirect at
# once could find no session yet, and a commit that failed had been answered a success.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
