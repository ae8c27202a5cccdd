from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.config import Settings
from engine.errors import Invalid
from engine.send import ambiguity, configured_transport
from engine.send.files import FileTransport
from engine.send.retries import RetryPolicy
from engine.send.sendgrid_api import SendGridTransport
from engine.send.smtp import SmtpTransport
from engine.send.transport import MemoryTransport, Transient


def test_backoff_doubles_with_jitter_up_to_the_cap(now: datetime) -> None:
    policy = RetryPolicy(base=timedelta(minutes=1), cap=timedelta(minutes=10), max_attempts=9)
    failure = Transient("m", "500")
    delays = [
        policy.next_attempt(failure, attempts=n, now=now, jitter=0.999_999) for n in (1, 2, 3, 6)
    ]
    assert [round((d - now).total_seconds()) for d in delays if d] == [60, 120, 240, 600]
    earliest = policy.next_attempt(failure, attempts=3, now=now, jitter=0.0)
    assert earliest == now + timedelta(minutes=2)


def test_the_rate_limit_reset_wins_over_a_shorter_backoff(now: datetime) -> None:
    reset = now + timedelta(minutes=5)
    result = Transient("m", "429", retry_after=reset)
    assert RetryPolicy().next_attempt(result, attempts=1, now=now, jitter=0.5) == reset


def test_a_message_is_given_up_after_the_limit(now: datetime) -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.next_attempt(Transient("m", "500"), attempts=3, now=now, jitter=0) is None


def test_a_message_never_offered_does_not_count(now: datetime) -> None:
    policy = RetryPolicy(max_attempts=1)
    untried = Transient("m", "not offered", attempted=False)
    assert policy.next_attempt(untried, attempts=5, now=now, jitter=0.3) == now


def test_ambiguous_sends_are_confirmed_resent_or_kept_waiting(now: datetime) -> None:
    # given three ambiguous messages, one of which SendGrid reported on
    since = {
        "seen": now - timedelta(hours=2),
        "old": now - timedelta(minutes=31),
        "recent": now - timedelta(minutes=5),
    }
    # when settled with a 30-minute wait
    settlement = ambiguity.settle(since, {"seen"}, now=now, wait=timedelta(minutes=30))
    # then only the silent, old one is resent
    assert settlement == ambiguity.Settlement(["seen"], ["old"], ["recent"])


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("file", FileTransport),
        ("smtp", SmtpTransport),
        ("sendgrid", SendGridTransport),
        ("memory", MemoryTransport),
    ],
)
def test_the_configured_transport_is_built(name: str, kind: type, tmp_path: Path) -> None:
    settings = Settings(transport=name, outbox_dir=tmp_path, SENDGRID_API_KEY="SG.key")
    assert isinstance(configured_transport.from_settings(settings), kind)


def test_sendgrid_without_a_key_is_a_configuration_error() -> None:
    with pytest.raises(Invalid, match="API key"):
        configured_transport.from_settings(Settings(transport="sendgrid", SENDGRID_API_KEY=""))
