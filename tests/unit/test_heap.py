"""The collector's pace during batch work (engine.heap): set for the block, nested and
overlapping blocks keep it until the last ends, and what was there before comes back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from engine import heap


@pytest.fixture(autouse=True)
def default_pace() -> Iterator[None]:
    before, enabled = gc.get_threshold(), gc.isenabled()
    gc.set_threshold(700, 10, 10)
    gc.enable()
    yield
    gc.set_threshold(*before)
    (gc.enable if enabled else gc.disable)()


def test_a_batch_pace_collects_less_often_and_ends_with_its_block() -> None:
    # When a block runs at the batch pace
    with heap.batch_pace():
        # Then the collector runs, less often
        assert gc.isenabled()
        assert gc.get_threshold() == heap.BATCH_PACE
    # And the default comes back after it
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.isenabled()


def test_a_pause_inside_a_batch_pace_stops_the_collector_until_the_last_block_ends() -> None:
    with heap.batch_pace():
        with heap.paused():
            assert not gc.isenabled()
        # The pause was asked inside: the collector stays off until the outer block ends
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_blocks_keep_the_pace_until_the_last_one_ends() -> None:
    # Given two passes that overlap (the scheduler's threads): the first ends first
    first, second = ExitStack(), ExitStack()
    first.enter_context(heap.batch_pace())
    second.enter_context(heap.batch_pace())
    first.close()
    # Then the second still runs at the batch pace
    assert gc.get_threshold() == heap.BATCH_PACE
    second.close()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with heap.paused():
        pass
    assert not gc.isenabled()
