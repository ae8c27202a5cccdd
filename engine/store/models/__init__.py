"""SQLAlchemy models: the data spine, one module per group of tables. Alembic migrations
must match these exactly.

Importing the package registers every table on `Base.metadata`, whichever module a caller
names; callers import the models from here (`from engine.store.models import Supporter`).
"""

from __future__ import annotations

from engine.store.models.base import Base
from engine.store.models.counts import MessageCounts, StepCounts
from engine.store.models.engagement import Click, Link
from engine.store.models.events import Event
from engine.store.models.giving import Donation
from engine.store.models.journeys import EnrolCursor, Enrolment, JourneyVersion
from engine.store.models.outbox import OutboxMessage
from engine.store.models.petitions import (
    Milestone,
    PendingSignature,
    Petition,
    Signature,
    SignatureDay,
)
from engine.store.models.staff import ApiKey, AuditEntry, StaffSession
from engine.store.models.supporters import Consent, Supporter, Suppression

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Click",
    "Consent",
    "Donation",
    "EnrolCursor",
    "Enrolment",
    "Event",
    "JourneyVersion",
    "Link",
    "MessageCounts",
    "Milestone",
    "OutboxMessage",
    "PendingSignature",
    "Petition",
    "Signature",
    "SignatureDay",
    "StaffSession",
    "StepCounts",
    "Supporter",
    "Suppression",
]
