"""Database keys are signed 64-bit integers (BIGINT on PostgreSQL, INTEGER on SQLite).

An id that comes from outside (a token, a webhook, a URL) is checked against this range
before it reaches a query: beyond it, SQLite's driver and psycopg raise instead of finding
nothing, and the request would end in a 500 rather than a 404.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1


def is_key(value: int) -> bool:
    """Whether `value` can be a row's id (ids start at 1)."""
    return 1 <= value <= MAX_ID
