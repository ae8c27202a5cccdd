"""The moment a webhook says it signed its request: Unix seconds, as ASCII digits only.

`int()` would also read ` +1_779_732_000 `, `٣`-style digits or leading zeros: none of
them can move the tolerance (the signature covers the header as sent), but a timestamp
that is not plain digits is not what either scheme sends, and is refused as malformed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_SECONDS = re.compile(r"[0-9]{1,12}")


def signed_at(timestamp: str) -> datetime:
    """The UTC moment of `timestamp` (Unix seconds); ValueError unless 1 to 12 ASCII digits."""
    if not _SECONDS.fullmatch(timestamp):
        raise ValueError(f"not Unix seconds: {timestamp[:20]!r}")
    return datetime.fromtimestamp(int(timestamp), UTC)
