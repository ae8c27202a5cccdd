"""A dashboard app on a committed database, a settable clock, and staff keys to sign in with."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from engine.api.app import create_app
from engine.config import Settings
from engine.rules.staff import Role
from engine.store import apikeys, counts
from engine.store.db import make_sessionmaker
from engine.store.models import Milestone, Supporter
from engine.store.step_figures import StepFigures
from tests.factories import unique
from tests.store.journey_helpers import ROOT, declare, seed_campaign, sign
from tests.store.test_stats_report import ab_journey


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
        # The dashboard's tests sign in again and again on a frozen clock: the sign-in
        # limit has its own tests (test_public_surface.py).
        login_rate_per_minute=0,
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


def journey_with_figures(engine: Engine) -> str:
    """A journey (thank-you, milestone email, A/B ask) with signers on two days, its first
    milestone reached, and summary rows of sends, clicks and gifts; returns its id."""
    journey_id = unique("j")
    campaign, _ = declare(ab_journey(journey_id))
    signed = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
    with make_sessionmaker(engine).begin() as session:
        petition_id = seed_campaign(session, campaign, signed - timedelta(days=2))
        people = {unique("p"): (True, True) for _ in range(3)}
        sign(session, petition_id, signed, people, signed_at=signed - timedelta(days=1))
        sign(session, petition_id, signed, {unique("p"): (True, False)})
        session.execute(
            update(Milestone)
            .where(Milestone.petition_id == petition_id, Milestone.threshold == 1000)
            .values(reached_at=signed)
        )
        counts.add(
            session,
            {
                (journey_id, "thanks", ""): StepFigures(sent=4, delivered=4, clickers=2, clicks=3),
                (journey_id, "news", ""): StepFigures(
                    sent=3, delivered=3, clickers=2, donors=1, gifts=1, one_off_cents=4000
                ),
                (journey_id, "ask", "A"): StepFigures(
                    sent=2000, delivered=1960, clickers=90, donors=16, gifts=16, one_off_cents=64000
                ),
                (journey_id, "ask", "-B"): StepFigures(
                    sent=2000,
                    delivered=1955,
                    clickers=90,
                    donors=24,
                    gifts=24,
                    one_off_cents=90000,
                    monthly_cents=1500,
                ),
            },
        )
    return journey_id
