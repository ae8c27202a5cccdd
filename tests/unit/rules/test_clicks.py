"""The scanner rule (engine/rules/clicks.py): a batch of clicks gets the flags the same
clicks would get one at a time, and people are not scanners."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.rules.clicks import Seen, automated

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
