"""Gifts in, journey on: the seed journey's goal and donor branch work from imported gifts.

Given the seed campaign and signers, when a payment platform's export is imported with
`mobilise import donations`' code and one gift is refunded through the webhook's code,
then: whoever gives during the journey leaves it as converted; donors get the ask for an
additional gift with amounts sized from their last gift, and each button links that very
amount; a refunded gift counts for nothing (neither the last gift nor a donor); a giver
who never signed is kept, without consent, and receives nothing. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.intake import gift_imports
from engine.render import tokens
from engine.send.transport import MemoryTransport, OutgoingMessage
from engine.store import milestones
from engine.store.models import Enrolment, Supporter
from engine.store.passes import tick
from engine.track import donations
from tests.store.dispatch_helpers import ENVELOPE, run
from tests.store.journey_helpers import enrolment_of, outbox_of, seed, sign

SIGNED = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Paris
MILESTONE = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
PAUSE = MILESTONE + timedelta(days=1)
ASK = MILESTONE + timedelta(days=3)
PARIS = ZoneInfo("Europe/Paris")
NBSP = "\u00a0"

# As a French platform exports it: its own header names, comma decimals, local dates.
EXPORT = """Courriel;Montant;Devise;Date du don;Fréquence;Identifiant
bob@example.org;30,00;EUR;12/02/2026 14:00;ponctuel;pay-bob-1
carl@example.org;20;EUR;12/02/2026 15:00;ponctuel;pay-carl-1
carl@example.org;100;EUR;03/05/2026 09:00;ponctuel;pay-carl-2
remy@example.org;60;EUR;03/05/2026 10:00;ponctuel;pay-remy-1
nina@example.org;25;EUR;04/05/2026 10:00;mensuel;pay-nina-1
"""


def importer(session: Session) -> sessionmaker[Session]:
    """The import's own transactions, as savepoints of the test's transaction."""
    return sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")


def import_export(session: Session, tmp_path: Path, text: str, now: datetime) -> str:
    path = tmp_path / f"dons-{now:%m%d}.csv"
    path.write_text(text, encoding="utf-8")
    report = gift_imports.import_donations(
        importer(session), path=path, now=lambda: now, zone=PARIS, secret=ENVELOPE.secret
    )
    return report.summary()


def ask_to(transport: MemoryTransport, name: str) -> OutgoingMessage:
    (message,) = [
        m
        for m in transport.sent
        if m.to.email == f"{name}@example.org" and m.custom_args["mobilise_step"].startswith("ask")
    ]
    return message


def linked_amounts(message: OutgoingMessage) -> list[int]:
    """The amounts, in euros, the email's donation buttons carry in their signed tokens."""
    found = []
    for token in message.text.split(f"{ENVELOPE.base_url}/c/")[1:]:
        gift = tokens.read_donation_token(ENVELOPE.secret, token.split()[0])
        if gift is not None:
            found.append(gift[2] // 100)
    return found


def test_imported_gifts_drive_the_goal_and_the_donor_branch(
    session: Session, tmp_path: Path
) -> None:
    # Given the seed journey and five signers who all accept fundraising emails
    declared, petition_id = seed(session, SIGNED - timedelta(days=1))
    named = declared.conditions
    sign(
        session,
        petition_id,
        SIGNED,
        {n: (True, True) for n in ("alice", "bob", "carl", "dina", "remy")},
    )
    # And the platform's export of earlier gifts, imported (Nina never signed)
    summary = import_export(session, tmp_path, EXPORT, SIGNED)
    assert "imported 5 / duplicates 0 / rejected 0" in summary
    assert "new supporters (gave without signing; no consent, no campaign email): 1" in summary
    # And Carl's 100 € and Rémy's 60 € refunded, as the webhook applies it
    for key in ("pay-carl-2", "pay-remy-1"):
        refunded = donations.apply_change(
            session, "refund", {"external_id": key}, now=SIGNED + timedelta(days=2), zone=PARIS
        )
        assert refunded == {"outcome": "refunded", "already": False}
    transport = MemoryTransport()

    # When the journey runs: thanks, the 140,000 update, a gift during the pause, the ask
    tick(session, now=SIGNED, segments=named)
    run(session, transport, SIGNED)
    milestones.check(session, petition_id=petition_id, count=140000, now=MILESTONE)
    tick(session, now=MILESTONE, segments=named)
    run(session, transport, MILESTONE)
    import_export(
        session,
        tmp_path,
        "email,amount,donated_at,external_id\ndina@example.org,15,2026-05-21T09:00:00Z,pay-dina-1\n",
        PAUSE,
    )
    tick(session, now=PAUSE + timedelta(hours=1), segments=named)
    tick(session, now=ASK, segments=named)
    run(session, transport, ASK)

    # Then Dina, who gave during the journey, left it as converted and is never asked
    assert enrolment_of(session, "dina")[2] == "converted"
    assert [step for step, _, _ in outbox_of(session, "dina")] == ["thanked", "update"]
    # And Bob gets the additional-gift ask sized from his 30 €, each button linking its amount
    assert outbox_of(session, "bob")[-1] == ("ask-additional", "sent", None)
    bob = ask_to(transport, "bob")
    assert f"par un don de 30,00{NBSP}€" in bob.text
    assert f"Je donne 45{NBSP}€ (soit 15,30{NBSP}€ après impôt)" in bob.text
    assert linked_amounts(bob) == [30, 45, 60]
    # And Carl's refunded 100 € does not count: his last gift is his 20 €
    assert outbox_of(session, "carl")[-1] == ("ask-additional", "sent", None)
    carl = ask_to(transport, "carl")
    assert f"par un don de 20,00{NBSP}€" in carl.text
    assert f"Je donne 30{NBSP}€ (soit 10,20{NBSP}€ après impôt)" in carl.text
    assert linked_amounts(carl) == [20, 30, 40]
    # And Rémy, whose only gift was refunded, is asked for a first gift, like Alice
    assert outbox_of(session, "remy")[-1] == ("ask-first", "sent", None)
    assert linked_amounts(ask_to(transport, "remy")) == [15, 30, 50]
    assert linked_amounts(ask_to(transport, "alice")) == [15, 30, 50]
    # And Nina, who gave without signing, is a supporter in no journey, emailed nothing
    nina = session.scalar(select(Supporter.id).where(Supporter.email == "nina@example.org"))
    assert nina is not None
    assert session.scalars(select(Enrolment.id).where(Enrolment.supporter_id == nina)).all() == []
    assert all(m.to.email != "nina@example.org" for m in transport.sent)
