"""What a database holds of a campaign, and emptying it: `mobilise demo` fills only an empty
one, or one it may empty (`--force`). Never commits.

Staff credentials (API keys and their sign-ins) and the append-only audit log stay: a demo
replaces a campaign, not who may read it nor what was done to people's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from engine.store.models import (
    ApiKey,
    AuditEntry,
    Base,
    Petition,
    Signature,
    StaffSession,
    Supporter,
)

KEPT = frozenset(t.__tablename__ for t in (ApiKey, AuditEntry, StaffSession))


@dataclass(frozen=True)
class Held:
    supporters: int
    signatures: int

    @property
    def empty(self) -> bool:
        return not (self.supporters or self.signatures)

    def __str__(self) -> str:
        return f"{self.supporters:,} supporter(s) and {self.signatures:,} signature(s)"


def held(session: Session) -> Held:
    """The people and signatures stored (a count of declared petitions and journeys alone,
    as `mobilise sync` leaves them, is an empty campaign)."""
    signed = session.scalar(select(func.coalesce(func.sum(Petition.signature_count), 0)))
    return Held(
        supporters=session.scalar(select(func.count()).select_from(Supporter)) or 0,
        signatures=max(
            int(signed or 0), session.scalar(select(func.count()).select_from(Signature)) or 0
        ),
    )


def clear(session: Session) -> None:
    """Delete every row of the campaign's tables (declarations included), keeping `KEPT`."""
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEPT]
    if session.get_bind().dialect.name == "postgresql":
        # One statement, and the ids start again at 1 as on a fresh database.
        names = ", ".join(t.name for t in tables)
        session.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        return
    for table in tables:  # children first: the foreign keys hold at each step
        session.execute(delete(table))
