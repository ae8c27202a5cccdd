"""Running the dispatch pass inside a test's rolled-back transaction, with the seed campaign."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from random import Random

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.render.library import TemplateLibrary
from engine.send.compose import Envelope
from engine.send.dispatcher import Policy, Report, Transaction, dispatch
from engine.send.transport import Address, Transport
from engine.store.models import Enrolment, OutboxMessage
from tests.store.journey_helpers import ROOT, supporter_id

LIBRARY = TemplateLibrary(ROOT / "templates" / "email")
ENVELOPE = Envelope(
    sender=Address("campagnes@example.org", "Vigie Libertés"),
    base_url="https://mobilise.example.org",
    secret="test-secret",
)
POLICY = Policy(envelope=ENVELOPE)


def nested(session: Session) -> Transaction:
    """Each of the pass's transactions is a savepoint of the test's transaction."""

    @contextmanager
    def begin() -> Iterator[Session]:
        with session.begin_nested():
            yield session

    def factory() -> AbstractContextManager[Session]:
        return begin()

    return factory


def run(
    session: Session,
    transport: Transport,
    now: datetime,
    *,
    policy: Policy = POLICY,
    worker_id: str = "w1",
    library: TemplateLibrary = LIBRARY,
) -> Report:
    return dispatch(
        nested(session),
        transport=transport,
        library=library,
        policy=policy,
        now=now,
        worker_id=worker_id,
        jitter=Random(7).random,
    )


def queue_step(
    session: Session,
    name: str,
    step_id: str,
    *,
    due_at: datetime,
    template: str | None = None,
    transactional: bool = False,
) -> int:
    """Queue a step's email for a seeded signer directly, as the advance pass would."""
    supporter = supporter_id(session, name)
    enrolment = session.execute(
        select(Enrolment.id, Enrolment.journey_id, Enrolment.journey_version_id).where(
            Enrolment.supporter_id == supporter
        )
    ).one()
    row = OutboxMessage(
        enrolment_id=enrolment[0],
        step_id=step_id,
        supporter_id=supporter,
        journey_id=enrolment[1],
        journey_version_id=enrolment[2],
        template=template or step_id,
        variant=None,
        transactional=transactional,
        status="queued",
        due_at=due_at,
        created_at=due_at - timedelta(minutes=1),
    )
    session.add(row)
    session.flush()
    return row.id


def row_of(session: Session, message_id: int) -> OutboxMessage:
    session.expire_all()
    found = session.get(OutboxMessage, message_id)
    assert found is not None
    return found


def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox"
