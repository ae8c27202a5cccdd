"""Per-client token buckets on an injected clock (seconds), no sleeping."""

from __future__ import annotations

from engine.api.ratelimit import TokenBuckets


def test_a_client_spends_its_minute_at_once_then_waits_for_the_next_token() -> None:
    # Given 20 requests a minute
    buckets = TokenBuckets(20)

    # When one client sends 21 at the same instant
    waits = [buckets.take("10.0.0.1", now=100.0) for _ in range(21)]

    # Then 20 go through and the 21st is told to wait one token's time (3 s)
    assert waits == [0] * 20 + [3]
    # And 3 s later exactly one more goes through
    assert buckets.take("10.0.0.1", now=103.0) == 0
    assert buckets.take("10.0.0.1", now=103.0) == 3


def test_a_steady_client_at_the_rate_is_never_refused() -> None:
    buckets = TokenBuckets(20)

    # One request every 3 s for an hour, after a full burst
    burst = [buckets.take("a", now=0.0) for _ in range(20)]
    steady = [buckets.take("a", now=3.0 * i) for i in range(1, 1200)]

    assert set(burst) == set(steady) == {0}


def test_clients_are_counted_apart() -> None:
    buckets = TokenBuckets(1)

    assert buckets.take("a", now=0.0) == 0
    assert buckets.take("a", now=0.0) == 60
    assert buckets.take("b", now=0.0) == 0


def test_a_clock_that_steps_back_refills_nothing() -> None:
    buckets = TokenBuckets(1)
    buckets.take("a", now=1000.0)

    assert buckets.take("a", now=10.0) == 60


def test_zero_a_minute_is_no_limit() -> None:
    buckets = TokenBuckets(0)

    assert {buckets.take("a", now=0.0) for _ in range(10_000)} == {0}


def test_memory_is_bounded_by_forgetting_the_client_seen_longest_ago() -> None:
    # Given room for two clients, and three that spent their only token
    buckets = TokenBuckets(1, max_clients=2)
    for client in ("a", "b", "c"):
        assert buckets.take(client, now=0.0) == 0

    # Then "a" was forgotten (a fresh bucket), "c" is still counted
    assert buckets.take("c", now=0.0) == 60
    assert buckets.take("a", now=0.0) == 0
