"""A dashboard app on a committed database, a settable clock, and staff keys to sign in with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.config import Settings
from engine.rules.staff import Role
from engine.store import apikeys
from engine.store.db import make_sessionmaker
from engine.store.models import Supporter
from tests.factories import unique
from tests.store.journey_helpers import ROOT


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 5, 13, 9, 30, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


def settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        project_dir=ROOT,
        secret_key="dashboard-secret",
        base_url="https://m.example.org",
        transport="memory",
    )


def client(url: str, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings(url), clock=clock), base_url="https://m.example.org") as c:
        yield c


def new_key(engine: Engine, role: Role, label: str = "") -> tuple[int, str]:
    with make_sessionmaker(engine).begin() as session:
        return apikeys.create(session, role=role, label=label, now=datetime.now(UTC))


def revoke(engine: Engine, key_id: int) -> None:
    with make_sessionmaker(engine).begin() as session:
        apikeys.revoke(session, key_id, now=datetime.now(UTC))


def new_supporter(engine: Engine, first_name: str, last_name: str = "Martin") -> str:
    email = f"{unique('preview')}@example.org"
    with make_sessionmaker(engine).begin() as session:
        session.add(
            Supporter(
                email=email,
                first_name=first_name,
                last_name=last_name,
                locale="fr",
                created_at=datetime.now(UTC),
            )
        )
    return email


def sign_in(client: TestClient, key: str, next_path: str = "/dashboard") -> None:
    answer = client.post(
        "/dashboard/login", data={"key": key, "next": next_path}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
