"""When to try a message again (pure: the clock and the jitter come in as arguments).

Exponential backoff with jitter, never earlier than the provider asked (429
`X-RateLimit-Reset`), and a limit after which the message is given up. Only attempts
that reached the provider count: a message returned `attempted=False` was never offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.send.transport import Transient


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def next_attempt(
        self, result: Transient, *, attempts: int, now: datetime, jitter: float
    ) -> datetime | None:
        """The earliest next try, or None when `attempts` (offered so far) is the limit.

        `jitter` in [0, 1) spreads retries over the second half of the backoff so that
        several workers do not come back in step.
        """
        if result.attempted and attempts >= self.max_attempts:
            return None
        if not result.attempted:
            # Not offered: only the provider's own deadline, if any, holds it back.
            later = result.retry_after
            return later if later is not None and later > now else now
        backoff = min(self.cap, self.base * (1 << min(max(0, attempts - 1), 30)))
        delay = backoff / 2 + backoff / 2 * min(max(jitter, 0.0), 1.0)
        earliest = now + delay
        if result.retry_after is not None and result.retry_after > earliest:
            return result.retry_after
        return earliest
