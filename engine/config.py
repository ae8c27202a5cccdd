"""One strict configuration, read from the MOBILISE_* environment variables."""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# Production refuses a shorter MOBILISE_SECRET_KEY: it signs every link in every email.
MIN_SECRET_BYTES = 32
SECRET_FILE = "secret_key"


@dataclass(frozen=True)
class Keys:
    """MOBILISE_SECRET_KEY and the keys it replaced (MOBILISE_SECRET_KEY_FALLBACKS): what
    is signed or hashed now uses `current`; a link, an opt-in link, a staff session or an
    erased address's hash made before a rotation is still recognised under a fallback
    (docs/operations.md, "Rotating the secret key"). A key that leaked
    (MOBILISE_SECRET_KEY_LEAKED) recognises no link or session, which whoever holds it
    could forge for any email; it only still matches the addresses erased under it."""

    current: str | bytes
    fallbacks: tuple[str | bytes, ...] = ()
    leaked: tuple[str | bytes, ...] = ()

    @property
    def all(self) -> tuple[str | bytes, ...]:
        """Every key a link or a session is checked under, the current one first."""
        return (self.current, *self.fallbacks)


# A key as the code takes it: one key (tests, the tools), or the configured keys.
Secret = str | bytes | Keys


def signing_key(secret: Secret) -> str | bytes:
    """The key that signs and hashes what is made now."""
    return secret.current if isinstance(secret, Keys) else secret


def verifying_keys(secret: Secret) -> tuple[str | bytes, ...]:
    """The keys under which something made earlier is recognised, the current one first."""
    return secret.all if isinstance(secret, Keys) else (secret,)


def hashing_keys(secret: Secret) -> tuple[str | bytes, ...]:
    """The keys under which an address's hash kept earlier (an erasure) may have been made:
    the verifying keys, then the leaked ones."""
    return (*secret.all, *secret.leaked) if isinstance(secret, Keys) else (secret,)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOBILISE_", extra="ignore")

    database_url: str = "sqlite:///var/mobilise.db"
    transport: Literal["file", "smtp", "sendgrid", "memory"] = "file"
    outbox_dir: Path = Path("var/outbox")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sendgrid_api_key: str = Field(default="", validation_alias="SENDGRID_API_KEY")
    sendgrid_api_host: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: str = ""
    # Unset: generated once and kept in `var_dir/secret_key` (refused in production).
    secret_key: str = ""
    # The keys MOBILISE_SECRET_KEY replaced, comma-separated: still recognised, never used
    # to sign (`keys`).
    secret_key_fallbacks: str = ""
    # Keys replaced because they leaked, comma-separated: they recognise no link, only the
    # addresses erased under them (`keys`).
    secret_key_leaked: str = ""
    # Where the process keeps what it makes for itself (the generated secret).
    var_dir: Path = Path("var")
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Europe/Paris"
    # --- gifts (docs/donations.md)
    donations_webhook_secret: str = ""
    # The organisation's donation page: ask buttons lead there through the click tracker,
    # with amount, frequency and the email's attribution reference added. Overrides
    # organisation.yaml's `donation_url` (engine/send/identity.py).
    donation_url: str = ""
    # A gift without a reference goes to the supporter's last click within this window.
    attribution_days: float = Field(default=7.0, gt=0)
    # Clicks on two different links of one email within this many seconds: a prefetcher
    # or a security scanner, flagged `automated` and left out of attribution and rates.
    automated_click_seconds: float = Field(default=10.0, ge=0)
    # How long a dashboard sign-in lasts; revoking the key ends it at once.
    staff_session_hours: float = 12.0
    # Unset: safe defaults. `development` also takes unsigned SendGrid webhooks;
    # `production` refuses to start without a long secret and a valid webhook key.
    env: Literal["development", "production"] | None = None
    # Where the declared campaign files live (journeys/, segments/, templates/email/).
    project_dir: Path = Path(".")
    # --- the public surface (docs/operations.md, "Public endpoints")
    # Sites whose pages may post signatures (comma-separated origins; also CORS).
    allowed_origins: str = ""
    # Request bodies over these are refused (413) before being read whole.
    sign_max_bytes: int = Field(default=16_384, gt=0)
    webhook_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    body_max_bytes: int = Field(default=1024 * 1024, gt=0)  # every other route
    # Per client address and process; 0: no limit.
    sign_rate_per_minute: int = Field(default=20, ge=0)
    login_rate_per_minute: int = Field(default=10, ge=0)
    # Group-commit window for web signatures: requests arriving within it share one transaction.
    sign_batch_max: int = 256
    sign_batch_wait_ms: float = 2.0
    # --- dispatch (engine/send/dispatcher.py, docs/operations.md)
    # Overrides of organisation.yaml's sender (and, above, of its donation page).
    from_email: str | None = None
    from_name: str | None = None
    # Where the files of static/ are published (a CDN, say); default `{base_url}/static`.
    asset_url: str | None = None
    hourly_limit: int | None = None  # emails per rolling hour, all workers together
    overdue_after_hours: float = 24.0  # later than this, a step waits for approval
    ambiguity_wait_minutes: float = 30.0  # SendGrid events awaited before a resend
    lease_minutes: float = 10.0  # a claim older than this belongs to a dead worker
    # A SendGrid block suppresses the address this long from the event, then lifts.
    block_suppression_days: float = Field(default=7.0, gt=0)
    # Run the periodic passes inside the API process (`mobilise run` turns it on).
    scheduler: bool = False
    dispatch_every_s: float = 10.0
    journeys_every_s: float = 60.0
    # An API process answering more hot requests a second than this (signatures, clicks)
    # puts its journey and dispatch passes off, for at most `passes_yield_at_most_s` in a
    # row (engine/make_way.py); 0: never. `mobilise worker` never does.
    passes_yield_above: float = Field(default=200.0, ge=0)
    passes_yield_at_most_s: float = Field(default=30.0, gt=0)
    # PostgreSQL connections a journey pass advances on at once, each over a share of the
    # supporters (engine/periodic.py); 1 keeps the pass in one transaction. SQLite: always 1.
    advance_connections: int = Field(default=2, ge=1, le=16)

    # --- supporters' rights (docs/privacy.md)
    # Anonymised this long after their last own contact (signature, click, gift)...
    retention_days: int = Field(default=1095, ge=1)
    # ... and donors no sooner than this long after their last gift (tax receipts).
    donor_retention_days: int = Field(default=2190, ge=1)
    retention_every_s: float = 3600.0
    # Double opt-in: a confirmation link works this long; the retention pass then deletes
    # the signature still unconfirmed (docs/privacy.md).
    confirm_days: int = Field(default=7, ge=1, le=365)

    @model_validator(mode="after")
    def _secret(self) -> Self:
        if self.secret_key and self.secret_key in _split(self.secret_key_leaked):
            raise ValueError(
                "MOBILISE_SECRET_KEY is listed in MOBILISE_SECRET_KEY_LEAKED: set a new key"
            )
        if self.env == "production" and len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"MOBILISE_SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes in"
                " production (e.g. `python3 -c 'import secrets;"
                " print(secrets.token_urlsafe(32))'`)"
            )
        if not self.secret_key:
            self.secret_key = kept_secret(self.var_dir / SECRET_FILE)
        return self

    @field_validator("donation_url")
    @classmethod
    def _donation_page(cls, value: str) -> str:
        if value and not value.lower().startswith(("https://", "http://")):
            raise ValueError("MOBILISE_DONATION_URL must be an absolute http(s) URL")
        return value

    @property
    def keys(self) -> Keys:
        """The secret key and its fallbacks, for whatever signs, hashes or checks."""
        return _keys(self.secret_key, self.secret_key_fallbacks, self.secret_key_leaked)

    @property
    def block_suppression(self) -> timedelta:
        return timedelta(days=self.block_suppression_days)

    @property
    def attribution_window(self) -> timedelta:
        return timedelta(days=self.attribution_days)

    @property
    def automated_click_window(self) -> timedelta:
        return timedelta(seconds=self.automated_click_seconds)


@lru_cache(maxsize=8)
def _keys(secret_key: str, fallbacks: str, leaked: str = "") -> Keys:
    """Read once per value (a click reads them): the fallbacks and the leaked keys comma-
    or blank-separated, in order, without repeats or the key itself; a key said leaked is
    no fallback."""
    bad = _split(leaked)
    trusted = (k for k in _split(fallbacks) if k != secret_key and k not in bad)
    return Keys(secret_key, tuple(trusted), tuple(k for k in bad if k != secret_key))


def _split(keys: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for k in re.split(r"[,\s]+", keys) if k))


def kept_secret(path: Path) -> str:
    """The secret kept in `path`, made (random, mode 0600) by the first process to need it.

    Written to a private temporary file, then linked into place: several processes
    starting at once all end up reading the one that won."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
            os.link(draft, path)
            log.warning(
                "MOBILISE_SECRET_KEY is not set: generated a random secret in %s (mode 0600)."
                " It signs the links in every email sent and the staff sessions: keep it"
                " with the database, or set MOBILISE_SECRET_KEY.",
                path,
            )
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            draft.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(
            f"{path} is empty: restore it from a backup, or set MOBILISE_SECRET_KEY"
            " (a new secret breaks the links in every email already sent)"
        )
    return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
