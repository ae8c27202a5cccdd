"""The retention pass on SQLite and PostgreSQL, in injected time.

Given supporters whose last own contact (a signature, a click, a gift; an automated click
is not one) lies either side of the retention period, when the pass runs at an instant,
then it anonymises exactly those the pure rule names, keeps donors until their own period
ends, reports first when asked, and reads the supporters through the last-contact index.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.rules.rights import Retention
from engine.store import audit, clicks, donations, retention
from engine.store.donations import DonationRow
from engine.store.models import Click, Donation, OutboxMessage, Petition, Supporter, Suppression
from engine.store.passes import tick
from tests.store.journey_helpers import seed, sign, supporter_id
from tests.store.plans import plan, statements

T0 = datetime(2026, 5, 13, 9, 30, tzinfo=UTC)
YEAR = timedelta(days=365)
POLICY = Retention(contact=3 * YEAR, donor=6 * YEAR)
NOW = T0 + 3 * YEAR + timedelta(days=1)
PEOPLE = ("alice", "bob", "carol", "dave", "erin")


def _click(session: Session, name: str, at: datetime, *, automated: bool = False) -> None:
    who = supporter_id(session, name)
    message = session.scalar(select(OutboxMessage.id).where(OutboxMessage.supporter_id == who))
    assert message is not None
    if automated:
        session.add(
            Click(message_id=message, link_position=0, supporter_id=who, clicked_at=at,
                  automated=True)
        )  # fmt: skip
        session.flush()
    else:
        clicks.record(session, message_id=message, position=0, supporter_id=who, now=at)


def history(session: Session) -> None:
    """alice signed 3 years and a day ago and nothing since; bob clicked 2 years after
    signing; carol gave half a day after signing; dave's only later click was a scanner's; erin
    signed a year after the others."""
    declared, petition_id = seed(session, T0 - timedelta(days=1))
    sign(session, petition_id, T0, {n: (True, True) for n in ("alice", "bob", "carol", "dave")})
    tick(session, now=T0, segments=declared.conditions)
    _click(session, "bob", T0 + 2 * YEAR)
    _click(session, "dave", T0 + 2 * YEAR, automated=True)
    donations.record(
        session,
        [DonationRow("carol@example.org", 5000, "EUR", T0 + timedelta(hours=12), "one-off", "c-1")],
        now=T0 + timedelta(hours=12),
    )
    sign(session, petition_id, T0 + YEAR, {"erin": (True, True)})


def erased(session: Session, ids: dict[str, int]) -> set[str]:
    gone = set(session.scalars(select(Supporter.id).where(Supporter.erased_at.is_not(None))))
    return {name for name, who in ids.items() if who in gone}


def test_the_pass_anonymises_those_past_the_period_and_keeps_donors(session: Session) -> None:
    history(session)
    count = session.scalar(select(Petition.signature_count))
    ids = {name: supporter_id(session, name) for name in PEOPLE}
    bob = ids["bob"]

    # A dry run reports and changes nothing
    dry = retention.report(session, POLICY, NOW)
    assert (dry.checked, dry.came_back, dry.donors_kept, dry.anonymised) == (4, 1, 1, 2)
    assert erased(session, ids) == set()

    done = retention.run(session, POLICY, NOW)

    assert (done.checked, done.came_back, done.donors_kept, done.anonymised) == (4, 1, 1, 2)
    assert erased(session, ids) == {"alice", "dave"}
    # Counts stay exact; nothing of the addresses is kept (no request: no suppression)
    assert session.scalar(select(Petition.signature_count)) == count
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert {(e.actor, e.action) for e in audit.entries(session)} == {("retention", "retention")}
    assert len(audit.entries(session)) == 2
    # Bob's bound moved to his click: the next passes do not look at him for two years
    assert session.scalar(select(Supporter.last_contact_at).where(Supporter.id == bob)) == (
        T0 + 2 * YEAR
    )
    again = retention.run(session, POLICY, NOW + timedelta(hours=1))
    assert (again.checked, again.came_back, again.anonymised) == (1, 0, 0)  # carol, a donor

    # Six years after her gift, the donor goes too
    last = retention.run(session, POLICY, T0 + 6 * YEAR + timedelta(days=2))
    assert erased(session, ids) >= {"alice", "dave", "carol"}
    assert last.anonymised >= 1


def test_the_pass_agrees_with_the_pure_rule(session: Session) -> None:
    history(session)
    for at in (NOW - timedelta(days=2), NOW, T0 + 5 * YEAR, T0 + 6 * YEAR + timedelta(days=2)):
        expected = set()
        for name in PEOPLE:
            who = supporter_id(session, name)
            expected_last = max(
                [
                    *session.scalars(
                        select(Click.clicked_at).where(
                            Click.supporter_id == who, Click.automated.is_(False)
                        )
                    ),
                    *session.scalars(
                        select(Donation.donated_at).where(Donation.supporter_id == who)
                    ),
                    T0 + YEAR if name == "erin" else T0,
                ]
            )
            gift = session.scalar(select(func.max(Donation.donated_at)).where(
                Donation.supporter_id == who))  # fmt: skip
            if POLICY.expired(expected_last, gift, at):
                expected.add(who)
        found = set(session.scalars(retention.expired(session, POLICY, at)))
        assert found == expected, at


def test_the_pass_reads_supporters_through_the_last_contact_index(session: Session) -> None:
    history(session)
    pass_: Callable[[], object] = lambda: retention.report(session, POLICY, NOW)  # noqa: E731
    with statements(session) as seen:
        pass_()
    tables = ("supporters", "signatures", "clicks", "donations")
    plans = [plan(session, s, p, tables) for s, p in seen]
    # The supporters past the cut come from the index (a statement may start from the
    # smaller side instead, e.g. the recent gifts of the donors kept), and no statement
    # reads every supporter.
    assert "ix_supporters_last_contact_at" in plans[0], plans[0]
    for text in plans:
        assert "SCAN supporters\n" not in text + "\n", text
        assert "Seq Scan on supporters" not in text, text
