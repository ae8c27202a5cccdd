"""What a journeys pass did: enrolled, queued, moved and exited, for `tick`, `simulate`
and the logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    """What a pass did, for `tick`, `simulate` and the logs."""

    enrolled: dict[str, int] = field(default_factory=dict)
    queued: dict[tuple[str, str], int] = field(default_factory=dict)
    moved: int = 0
    exited: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[Any, int], key: Any, n: int) -> None:
        if n:
            bucket[key] = bucket.get(key, 0) + n

    @property
    def changed(self) -> int:
        return sum(self.enrolled.values()) + self.moved + sum(self.exited.values())

    def add(self, other: Summary) -> None:
        """Fold in what another part of the same pass did (a shard's transaction)."""
        for bucket, theirs in (
            (self.enrolled, other.enrolled),
            (self.queued, other.queued),
            (self.exited, other.exited),
        ):
            for key, n in theirs.items():
                self.count(bucket, key, n)
        self.moved += other.moved
