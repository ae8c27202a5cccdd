"""The pure part of supporters' rights: restriction in the planner, the keyed address hash,
the erased-address list, the retention rule."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings

from engine.rules.conditions import Condition, Facts
from engine.rules.journeys import Journey
from engine.rules.plan import plan
from engine.rules.rights import ErasedAddresses, Retention
from engine.rules.supporters import email_hash
from tests.unit.rules.test_properties import T0, changes, histories, journeys

SEGMENTS: dict[str, Condition] = {}


@settings(max_examples=100, deadline=None)
@given(journey=journeys(), history=histories())
def test_a_restricted_supporter_is_neither_enrolled_nor_moved(
    journey: Journey, history: tuple[Facts, list[datetime]]
) -> None:
    facts, passes = history
    restricted = replace(facts, restricted=True)
    # Never enrolled
    assert plan(journey, None, restricted, T0, petition="p", segments=SEGMENTS, enrol_as=1) == (
        plan(journey, None, restricted, T0, petition="p", segments=SEGMENTS)
    )
    # An enrolment, wherever it is, takes no step and sends nothing while restricted
    first = plan(journey, None, facts, T0, petition="p", segments=SEGMENTS, enrol_as=1).state
    if first is None or first.status != "active":
        return
    for now in passes:
        frozen = plan(journey, first, restricted, now, petition="p", segments=SEGMENTS)
        assert changes(frozen) == []
        assert frozen.state == first


def test_the_address_hash_is_keyed() -> None:
    email = "alice@example.org"
    assert email_hash(email, "one secret") == email_hash(email, b"one secret")
    assert email_hash(email, "one secret") != email_hash(email, "another secret")
    # Not the plain hash a list of known addresses would find again
    assert email_hash(email, "one secret") != hashlib.sha256(email.encode()).hexdigest()


def test_erased_addresses_are_found_by_their_keyed_hash_only() -> None:
    erased = ErasedAddresses("s", frozenset({email_hash("gone@example.org", "s")}))
    assert "gone@example.org" in erased
    assert "kept@example.org" not in erased
    assert None not in erased
    assert "gone@example.org" not in ErasedAddresses("another secret", erased.hashes)
    assert "gone@example.org" not in ErasedAddresses("s")


def test_the_retention_rule() -> None:
    rule = Retention(contact=timedelta(days=1095), donor=timedelta(days=2190))
    now = datetime(2030, 1, 1, tzinfo=UTC)
    old, recent = now - timedelta(days=1100), now - timedelta(days=10)
    assert rule.expired(old, None, now)
    assert not rule.expired(recent, None, now)
    assert not rule.expired(None, None, now)  # anonymised already
    assert not rule.expired(old, now - timedelta(days=2000), now)  # a donor, kept
    assert rule.expired(old, now - timedelta(days=2200), now)


def test_facts_are_not_restricted_by_default() -> None:
    assert Facts().restricted is False
