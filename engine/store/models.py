"""SQLAlchemy models: the data spine. Alembic migrations must match these exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.store.types import BigId, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _created_at(context: Any) -> Any:
    return context.get_current_parameters()["created_at"]


class Supporter(Base):
    """A person we may email. Erasure blanks the personal columns and keeps the id."""

    __tablename__ = "supporters"
    __table_args__ = (
        # The retention pass reads the supporters whose last contact is older than a cut.
        Index("ix_supporters_last_contact_at", "last_contact_at"),
        # Few rows: every pass and dispatch reads the restricted ones (store/supporters.py).
        Index(
            "ix_supporters_restricted",
            "id",
            postgresql_where=text("restricted_at IS NOT NULL"),
            sqlite_where=text("restricted_at IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised (NFKC, trimmed, lower-cased); NULL once erased.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    departement: Mapped[str | None] = mapped_column(String(3))
    region: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10), default="fr")
    created_at: Mapped[datetime]
    restricted_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    # A lower bound of the supporter's last own contact (a signature, a click, a gift): set
    # when the row is made, raised by the retention pass when it finds a later one, NULL
    # once anonymised (engine/store/retention.py).
    last_contact_at: Mapped[datetime | None] = mapped_column(default=_created_at)


class Consent(Base):
    """Append-only consent history: the latest row per (supporter, purpose) is in force."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_supporter_purpose", "supporter_id", "purpose", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on the bulk-written tables (consents, signatures): only the set-based
    # pipeline in store/signatures.py writes them, from rows it has just joined, and on
    # PostgreSQL the per-row RI triggers cost as much as the inserts (measured: 0.7 s of a
    # 1.4 s 20,000-row batch).
    supporter_id: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column(Boolean)
    wording_version: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime]


class Petition(Base):
    __tablename__ = "petitions"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    # Exact count, bumped in the same statement batch that inserts signatures.
    signature_count: Mapped[int] = mapped_column(Integer, default=0)
    # purpose -> {"version": ..., "wording": ...}: what the signer ticked, as declared.
    consent_wordings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    # Double opt-in (engine/store/confirmations.py), as declared.
    double_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    count_unconfirmed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Signature(Base):
    """One signature; `seq` is its rank in the petition (the 140,000th has seq 140000)."""

    __tablename__ = "signatures"
    __table_args__ = (
        UniqueConstraint("petition_id", "supporter_id"),
        UniqueConstraint("petition_id", "seq"),
        # Partial: emailed signatures (all but a few) have no paper key, and a NULL entry
        # per signature was a fifth of the index work of an import.
        Index(
            "uq_signatures_petition_id_paper_key",
            "petition_id",
            "paper_key",
            unique=True,
            postgresql_where=text("paper_key IS NOT NULL"),
            sqlite_where=text("paper_key IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    petition_id: Mapped[int] = mapped_column(Integer)  # no foreign keys: see Consent
    # NULL for paper signatures (no email): they count but receive nothing.
    supporter_id: Mapped[int | None] = mapped_column(Integer)
    # Content hash of a paper row, so that re-importing a sheet changes nothing.
    paper_key: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    signed_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20))
    # Imported signers enter journeys only when the import says so (`--enrol`).
    enrol: Mapped[bool] = mapped_column(Boolean, default=True)


class PendingSignature(Base):
    """A web signature of a double opt-in petition waiting for its address to be confirmed
    (engine/store/confirmations.py). Its consents are granted, and its signature recorded
    (or, with `count_unconfirmed`, enrolled), only when it is confirmed; the retention pass
    deletes it at `expires_at`, with the supporter it made if they have nothing else."""

    __tablename__ = "pending_signatures"
    __table_args__ = (
        UniqueConstraint("petition_id", "supporter_id"),
        Index("ix_pending_signatures_expires_at", "expires_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    # purpose -> granted, as the form answered: recorded as consents on confirmation.
    consents: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (UniqueConstraint("petition_id", "threshold"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"))
    threshold: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime | None]
    signature_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("signatures.id"))


class Event(Base):
    """Append-only log of facts; `source_key` de-duplicates replays from any source."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_supporter", "supporter_id", "occurred_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    petition_id: Mapped[int | None] = mapped_column(ForeignKey("petitions.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Its first characters (engine/store/apikeys.PREFIX_LENGTH), not secret: they name the
    # key a refused one claims to be in the audit log. None for keys made before 0014.
    key_prefix: Mapped[str | None] = mapped_column(String(12), index=True)
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Append-only: who did what to whom, when (rights exercised, sign-ins, key changes).

    Never updated or deleted: the store has no function for it, and triggers refuse it
    (migration 0009). The target is a supporter id, never an address."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_supporter", "supporter_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    # `staff:<key id>` (dashboard), `apikey:<key id>` (API), `cli`, `supporter`, `retention`.
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    # No foreign key: the log outlives what it names.
    supporter_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StaffSession(Base):
    """A dashboard sign-in: the cookie names it, signing out deletes it."""

    __tablename__ = "staff_sessions"
    # SHA-256 of the random session token the (signed) cookie carries.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


# --- journeys, outbox, giving, engagement


class JourneyVersion(Base):
    """One stored definition of a journey; `sync` adds a version when the content hash moves."""

    __tablename__ = "journey_versions"
    __table_args__ = (
        UniqueConstraint("journey_id", "version"),
        UniqueConstraint("journey_id", "content_hash"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    campaign: Mapped[str] = mapped_column(String(100))
    petition_slug: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Enrolment(Base):
    """A supporter's walk through one journey version; `entry` counts re-entries."""

    __tablename__ = "enrolments"
    __table_args__ = (
        # Supporter first: the same index serves re-entry checks and per-supporter lookups,
        # one index fewer to maintain on every advance (PostgreSQL updates them all).
        UniqueConstraint("supporter_id", "journey_id", "entry"),
        # The advance pass reads "active rows of this version at this step, due by now".
        Index("ix_enrolments_due", "journey_version_id", "state", "step_id", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(100))
    journey_version_id: Mapped[int] = mapped_column(ForeignKey("journey_versions.id"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    entry: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(10))
    step_id: Mapped[str | None] = mapped_column(String(60))
    step_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    entered_at: Mapped[datetime]
    exited_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(40))
    variant: Mapped[str | None] = mapped_column(String(20))


class EnrolCursor(Base):
    """How far a journey version's `signed:` or `milestone:` trigger has read its petition's
    signatures (engine/store/cursors.py): every signature ranked up to `seq` is settled, so
    each pass reads only the signatures ranked above it, through (petition_id, seq)."""

    __tablename__ = "enrol_cursors"
    # By version: a new version (its trigger may differ) starts over, as a new journey does.
    journey_version_id: Mapped[int] = mapped_column(
        ForeignKey("journey_versions.id"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer)


class OutboxMessage(Base):
    """One email per enrolment and step: the UNIQUE pair is the idempotency key."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "step_id"),
        # The dispatcher claims due rows by status; the frequency cap reads recent emails
        # by due time. Per-supporter reads go through enrolments (unique key above).
        Index("ix_outbox_status_due", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign keys on this table, on purpose: rows are only ever written by the advance
    # pass from existing enrolments, and on PostgreSQL the three per-row RI triggers cost
    # more than the insert itself (measured: 60% of a million-row advance).
    enrolment_id: Mapped[int] = mapped_column(BigId)
    step_id: Mapped[str] = mapped_column(String(60))
    supporter_id: Mapped[int] = mapped_column(Integer)
    journey_id: Mapped[str] = mapped_column(String(100))
    journey_version_id: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str | None] = mapped_column(String(20))
    transactional: Mapped[bool] = mapped_column(Boolean)
    # queued | held | sending | sent | suppressed | failed
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(80))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # --- dispatch: written by engine/send, never by the advance pass
    # The template version (content hash) rendered: clicks resolve against its links.
    template_version: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A claim is a lease: a worker that dies mid-batch leaves rows a later pass can see.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(100))
    # Latest provider event applied (processed, delivered, bounce, ...) and its time, so
    # that late or repeated webhook events never move a message backwards.
    delivery: Mapped[str | None] = mapped_column(String(20))
    delivery_at: Mapped[datetime | None]


class Donation(Base):
    __tablename__ = "donations"
    __table_args__ = (
        Index("ix_donations_supporter", "supporter_id", "donated_at"),
        Index("ix_donations_message", "message_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    donated_at: Mapped[datetime]
    # one-off | monthly
    frequency: Mapped[str] = mapped_column(String(10))
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    recorded_at: Mapped[datetime]
    # The email that led to the gift, and how it was found: `reference` (the payment
    # platform handed back the link's reference) or `last_click`. NULL: unattributed.
    message_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("outbox.id", ondelete="SET NULL")
    )
    attributed_by: Mapped[str | None] = mapped_column(String(20))
    # A refund or a cancelled monthly gift dates the change and keeps the row.
    refunded_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class Suppression(Base):
    """Do not email: for good (unsubscribes, hard bounces, complaints, erasure: the hash
    survives erasure) or until `expires_at` (blocks). engine.store.suppressions reads them."""

    __tablename__ = "suppressions"
    __table_args__ = (
        # Carries the expiry: "in force at now" is answered from the index.
        Index("ix_suppressions_supporter", "supporter_id", "expires_at"),
        Index("ix_suppressions_email_hash", "email_hash"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    email_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    # NULL: for good. Otherwise the suppression stops applying at this instant.
    expires_at: Mapped[datetime | None]


class Click(Base):
    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_supporter", "supporter_id", "clicked_at"),
        Index("ix_clicks_message", "message_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox.id", ondelete="CASCADE"))
    link_position: Mapped[int] = mapped_column(Integer)
    supporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("supporters.id", ondelete="SET NULL")
    )
    clicked_at: Mapped[datetime]
    # A prefetcher or security scanner (several links within seconds of delivery): kept,
    # left out of rates.
    automated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Link(Base):
    """The tracked URLs of one template version: a click redirects only to these."""

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("template", "version", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)


# --- figures: kept exact as events arrive (engine/store/counts.py)


class MessageCounts(Base):
    """What one email has produced so far besides being sent (delivered, clicks, gifts...):
    the share of it that `step_counts` holds, so that a change is added there once, as a
    difference. Written from an email's first such event on (engine/store/counts.py)."""

    __tablename__ = "message_counts"
    # No foreign key: written beside the outbox in the same statements' transactions, as
    # the outbox itself is (see OutboxMessage).
    message_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(100))
    step_id: Mapped[str] = mapped_column(String(60))
    variant: Mapped[str] = mapped_column(String(20))  # '' without variants
    delivered: Mapped[int] = mapped_column(Integer)
    bounced: Mapped[int] = mapped_column(Integer)
    unsubscribed: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)
    gifts: Mapped[int] = mapped_column(Integer)
    one_off_cents: Mapped[int] = mapped_column(BigInteger)
    monthly_cents: Mapped[int] = mapped_column(BigInteger)


class StepCounts(Base):
    """The summary rows: per journey, step and variant, the sums over its emails of
    `message_counts` (clickers and donors: the emails with at least one click or gift).
    A funnel reads a few of these rows, whatever the number of events behind them."""

    __tablename__ = "step_counts"
    journey_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    variant: Mapped[str] = mapped_column(String(20), primary_key=True)  # '' without variants
    sent: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    bounced: Mapped[int] = mapped_column(BigInteger)
    unsubscribed: Mapped[int] = mapped_column(BigInteger)
    clickers: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    donors: Mapped[int] = mapped_column(BigInteger)
    gifts: Mapped[int] = mapped_column(BigInteger)
    one_off_cents: Mapped[int] = mapped_column(BigInteger)
    monthly_cents: Mapped[int] = mapped_column(BigInteger)
