"""The scanner rule (engine/rules/clicks.py): a batch of clicks gets the flags the same
clicks would get one at a time, and people are not scanners."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.rules.clicks import Seen, automated, one_link_late

SENT = datetime(2026, 5, 20, 8, 0, tzinfo=UTC)
BURST = timedelta(seconds=10)

clicks = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 40)).map(
        lambda c: Seen(c[0], SENT + timedelta(seconds=c[1]))
    ),
    max_size=8,
)


def one_at_a_time(new: list[Seen], sent_at: datetime) -> list[bool]:
    """Each click recorded alone, in time order, as the click route once did; the flags in
    that order."""
    recorded: list[Seen] = []
    for click_id, click in enumerate(sorted(new, key=lambda c: c.at)):
        verdict = automated(recorded, [click], sent_at=sent_at, burst=BURST)
        recorded = [
            replace(c, automated=c.automated or c.click_id in verdict.flipped) for c in recorded
        ]
        recorded.append(replace(click, automated=verdict.new[0], click_id=click_id))
    return [c.automated for c in recorded]


@given(clicks, st.integers(-60, 20))
def test_a_batch_is_flagged_as_its_clicks_one_at_a_time(new: list[Seen], sent: int) -> None:
    sent_at = SENT + timedelta(seconds=sent)
    batch = automated([], new, sent_at=sent_at, burst=BURST)
    in_time_order = sorted(range(len(new)), key=lambda i: new[i].at)
    assert [batch.new[i] for i in in_time_order] == one_at_a_time(new, sent_at)


def test_a_reader_clicking_one_link_twice_is_no_scanner() -> None:
    first = Seen(0, SENT + timedelta(hours=1), click_id=1)
    again = Seen(0, SENT + timedelta(hours=1, seconds=2))
    assert automated([first], [again], sent_at=SENT, burst=BURST).new == (False,)


def test_a_second_link_within_the_burst_flags_both_clicks() -> None:
    first = Seen(0, SENT + timedelta(hours=1), click_id=1)
    second = Seen(1, SENT + timedelta(hours=1, seconds=3))
    verdict = automated([first], [second], sent_at=SENT, burst=BURST)
    assert (verdict.new, verdict.flipped) == ((True,), frozenset({1}))


def test_a_click_seconds_after_the_send_is_a_gateways() -> None:
    alone = Seen(0, SENT + timedelta(seconds=4))
    assert automated([], [alone], sent_at=SENT, burst=BURST).new == (True,)


@given(clicks, clicks, st.integers(-60, 20))
def test_one_link_late_holds_only_where_the_rule_flags_nothing(
    recorded: list[Seen], new: list[Seen], sent: int
) -> None:
    # Given an email's recent clicks, new ones, and when it was sent
    sent_at = SENT + timedelta(seconds=sent)
    recorded = [replace(c, click_id=i) for i, c in enumerate(recorded)]
    positions = {c.position for c in [*recorded, *new]}

    # When the store asks whether the rule can flag any of them without reading the
    # recent clicks themselves (their links suffice)
    if not new or not one_link_late(
        positions, sent_at=sent_at, earliest=min(c.at for c in new), burst=BURST
    ):
        return

    # Then no new click is within the burst of the send or of a click on another link,
    # and the rule flags and flips nothing
    for click in new:
        assert sent_at <= click.at - BURST
        assert not [c for c in [*recorded, *new] if c.position != click.position]
    verdict = automated(recorded, new, sent_at=sent_at, burst=BURST)
    assert verdict.new == (False,) * len(new)
    assert verdict.flipped == frozenset()
