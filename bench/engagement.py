"""The campaign's readers answer: clicks on the ask's donation button, gifts, and the funnel.

After the ticks of `campaign_bench.py`, in the campaign's virtual time, through the doors a
campaign has:
- readers of a share of the asks sent click their donation button, `GET /c/{token}` on the
  API (`create_app` with a clock the bench sets, served by uvicorn on loopback), a fifth
  of them again an hour later; the redirect hands the donation page the email's reference;
- a share of those clickers give on that page: the payment platform posts each gift with
  its reference, `POST /api/donations` with a manager's key;
- `mobilise import donations` of the gifts that came another way: clickers who gave by
  bank transfer (no reference: attributed to their last click) and supporters who never
  clicked (attributed to no email);
- `mobilise stats` prints the funnel, and the summary rows are checked against a recount
  from the tables.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.api.app import create_app
from engine.config import Settings
from engine.render import tokens
from engine.render.links import DONATION_LINK
from engine.rules.staff import Role
from engine.store import apikeys, recounts, step_figures
from engine.store.models import Link, OutboxMessage, StepCounts, Supporter
from tests.e2e.live_server import serving

ASKS = ("ask-first", "ask-additional")
CLICKING = 0.08  # of the asks sent, their reader clicks the donation button
AGAIN = 0.2  # of the clickers, click it again an hour later
BY_REFERENCE = 0.25  # of the clickers, give on the donation page (reference handed back)
BY_TRANSFER = 0.1  # of the clickers, give by bank transfer (no reference)
UNPROMPTED = 0.005  # of the asks sent, their reader gives without clicking
AMOUNTS = (1500, 3000, 5000)
T = TypeVar("T")
R = TypeVar("R")


class Clock:
    """The API's clock: the instant the bench says."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Answered:
    clicks: int = 0
    clicks_s: float = 0.0
    gifts_by_reference: int = 0
    gifts_s: float = 0.0
    import_report: str = ""
    import_s: float = 0.0
    stats_table: str = ""
    stats_s: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ask:
    message_id: int
    email: str
    position: int  # of its donation button


def asks_sent(session: Session) -> list[Ask]:
    """Every ask sent, with its reader's address and the position of a donation button."""
    buttons: dict[tuple[str, str | None], int] = {}
    for template, version, position in session.execute(
        select(Link.template, Link.version, Link.position).where(Link.url == DONATION_LINK)
    ):
        buttons.setdefault((template, version), position)
    rows = session.execute(
        select(
            OutboxMessage.id,
            Supporter.email,
            OutboxMessage.template,
            OutboxMessage.template_version,
        )
        .join(Supporter, Supporter.id == OutboxMessage.supporter_id)
        .where(OutboxMessage.step_id.in_(ASKS), OutboxMessage.status == "sent")
        .order_by(OutboxMessage.id)
    )
    return [
        Ask(message_id, str(email), buttons[(template, version)])
        for message_id, email, template, version in rows
        if (template, version) in buttons
    ]


def answer(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    after: datetime,
    rng: random.Random,
    folder: Path,
) -> Answered:
    """Clicks and gifts from `after` on (the campaign's last tick), then the funnel."""
    done = Answered()
    clock = Clock(after + timedelta(hours=2))
    with sessions.begin() as session:
        asks = asks_sent(session)
        _, key = apikeys.create(session, role=Role.manager, label="payment platform", now=clock())
    clickers = rng.sample(asks, round(len(asks) * CLICKING))
    again = rng.sample(clickers, round(len(clickers) * AGAIN))
    by_reference = rng.sample(clickers, round(len(clickers) * BY_REFERENCE))
    giving = {a.message_id for a in by_reference}
    transfers = [a for a in clickers if a.message_id not in giving]
    by_transfer = transfers[: round(len(clickers) * BY_TRANSFER)]
    chosen = {a.message_id for a in clickers}
    others = [a for a in asks if a.message_id not in chosen]
    unprompted = rng.sample(others, min(len(others), round(len(asks) * UNPROMPTED)))
    amount = {a.message_id: rng.choice(AMOUNTS) for a in clickers}

    # The API alone: no scheduler, nothing sent from it.
    app = create_app(settings.model_copy(update={"transport": "memory"}), clock=clock)
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:

        def click(ask: Ask) -> str | None:
            token = tokens.donation_token(
                settings.secret_key, ask.message_id, ask.position, amount[ask.message_id], "one-off"
            )
            reply = client.get(f"/c/{token}")
            if reply.status_code != 302:
                return None
            return parse_qs(urlsplit(reply.headers["location"]).query)["reference"][0]

        started = time.perf_counter()
        references = dict(
            zip((a.message_id for a in clickers), _each(click, clickers), strict=True)
        )
        clock.now += timedelta(hours=1)
        repeated = _each(click, again)
        done.clicks = sum(r is not None for r in (*references.values(), *repeated))
        if done.clicks != len(clickers) + len(again):
            done.problems.append(f"clicks refused: {len(clickers) + len(again) - done.clicks}")
        done.clicks_s = time.perf_counter() - started
        clock.now += timedelta(hours=1)

        def give(ask: Ask) -> int:
            gift = {
                "email": ask.email,
                "amount": f"{amount[ask.message_id] / 100:.2f}",
                "currency": "EUR",
                "frequency": "one-off",
                "external_id": f"web-{ask.message_id}",
                "reference": references[ask.message_id],
            }
            headers = {"Authorization": f"Bearer {key}"}
            return client.post("/api/donations", json=gift, headers=headers).status_code

        started = time.perf_counter()
        given = list(_each(give, by_reference))
        done.gifts_s = time.perf_counter() - started
        done.gifts_by_reference = given.count(201)
        if done.gifts_by_reference != len(by_reference):
            done.problems.append(f"gifts refused by the API: {sorted(set(given))}")

    path = folder / "transfers.csv"
    at = clock.now + timedelta(hours=1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "amount", "currency", "donated_at", "frequency", "external_id"])
        for ask in [*by_transfer, *unprompted]:
            euros = amount.get(ask.message_id, 2000) // 100
            out.writerow(
                [ask.email, euros, "EUR", at.isoformat(), "one-off", f"t-{ask.message_id}"]
            )
    env = _environment(settings)
    started = time.perf_counter()
    imported = mobilise(env, "import", "donations", str(path), "--now", at.isoformat())
    done.import_report = imported.stdout.strip()
    done.import_s = time.perf_counter() - started

    started = time.perf_counter()
    shown = mobilise(env, "stats")
    done.stats_s = time.perf_counter() - started
    done.stats_table = shown.stdout
    with sessions.begin() as session:
        stored = {
            (r.journey_id, r.step_id, r.variant): step_figures.StepFigures(
                *(getattr(r, name) for name in step_figures.FIGURES)
            )
            for r in session.scalars(select(StepCounts))
        }
        recounted = recounts.recount(session)
    if {k: v for k, v in stored.items() if v} != recounted:
        done.problems.append("the summary rows differ from a recount from the tables")
    return done


def _each(work: Callable[[T], R], items: list[T]) -> list[R]:
    """`work` on each item, eight at a time, results in order."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(work, items))


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "MOBILISE_DATABASE_URL": settings.database_url,
        "MOBILISE_PROJECT_DIR": str(settings.project_dir),
        "MOBILISE_SECRET_KEY": settings.secret_key,
    }


def mobilise(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A `mobilise` command, as a campaign team runs it."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
