"""Settling sends whose request left without an answer (pure).

SendGrid has no idempotency key: after a timeout or reset we cannot know whether it took
the request. The dispatcher marks those messages `ambiguous` with the time, waits for
the provider's events (any event carrying the message id in `custom_args` proves
SendGrid has it), and after `wait` resends only the ids that never showed up.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_WAIT = timedelta(minutes=30)


@dataclass(frozen=True)
class Settlement:
    confirmed: list[str] = field(default_factory=list)  # SendGrid has them: mark sent
    resend: list[str] = field(default_factory=list)  # waited long enough: queue again
    waiting: list[str] = field(default_factory=list)  # keep waiting


def settle(
    ambiguous_since: Mapping[str, datetime],
    seen: Collection[str],
    *,
    now: datetime,
    wait: timedelta = DEFAULT_WAIT,
) -> Settlement:
    """Sort ambiguous message ids by what the events received so far say about them."""
    settlement = Settlement()
    for message_id, since in sorted(ambiguous_since.items()):
        if message_id in seen:
            settlement.confirmed.append(message_id)
        elif now - since >= wait:
            settlement.resend.append(message_id)
        else:
            settlement.waiting.append(message_id)
    return settlement
