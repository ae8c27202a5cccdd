"""The dispatcher hands SendGrid skeletons + substitutions that give every recipient's email.

Given signers with ordinary and hostile first names, when the same queue is dispatched
to the memory transport (full renders) and, after rolling that back, to the SendGrid
stand-in, then SendGrid's substitution of each personalisation gives the very subject,
HTML and text of the full render, in one request for ordinary recipients; a value that
cannot ride as a substitution is still sent, rendered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from engine.render.skeletons import MARK
from engine.send.sendgrid_api import SendGridTransport
from engine.send.transport import MemoryTransport, apply_substitutions
from engine.store.models import Supporter
from engine.store.passes import tick
from tests.fakes.sendgrid_server import API_KEY, FakeSendGrid
from tests.store.dispatch_helpers import run
from tests.store.journey_helpers import seed, sign, supporter_id

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # the `now` fixture: the fake's clock
NAMES = {
    "alice": "Alice",
    "bob": "<script>alert(1)</script>",
    "carol": 'Carol & "Dan" l\'aîné',
    "dave": "",
    "erin": f"Erin {MARK}00",
    "frank": "{{ 7*7 }}",
}


def test_sendgrid_substitution_gives_each_full_render(
    session: Session, sendgrid_server: FakeSendGrid
) -> None:
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    sign(session, petition_id, SIGNED, {name: (True, True) for name in NAMES})
    for name, first_name in NAMES.items():
        session.execute(
            update(Supporter)
            .where(Supporter.id == supporter_id(session, name))
            .values(first_name=first_name)
        )
    tick(session, now=SIGNED, segments=declared.conditions)
    # The full renders, from a dispatch that is then rolled back
    savepoint = session.begin_nested()
    memory = MemoryTransport()
    run(session, memory, SIGNED)
    savepoint.rollback()
    expected = {m.message_id: (m.subject, m.html, m.text) for m in memory.sent}
    assert len(expected) == len(NAMES)

    run(session, SendGridTransport(API_KEY, host=sendgrid_server.url, clock=lambda: SIGNED), SIGNED)

    got: dict[str, tuple[str, str, str]] = {}
    shared = 0
    for request in sendgrid_server.accepted:
        body = request.body
        text, html = (part["value"] for part in body["content"])
        for personalisation in body["personalizations"]:
            substitutions = personalisation.get("substitutions", {})
            shared += bool(substitutions)
            message_id = personalisation["custom_args"]["mobilise_message_id"]
            got[message_id] = (
                apply_substitutions(body["subject"], substitutions),
                apply_substitutions(html, substitutions),
                apply_substitutions(text, substitutions),
            )
    assert got == expected
    # Everyone but Erin (whose name holds the tag mark) rode on a shared skeleton
    assert shared == len(NAMES) - 1
