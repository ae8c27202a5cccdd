"""One strict configuration, read from the MOBILISE_* environment variables."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    # Development default only; `mobilise run` refuses it when MOBILISE_ENV=production.
    secret_key: str = "dev-only-insecure-secret"
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Europe/Paris"
    # --- gifts (docs/donations.md)
    donations_webhook_secret: str = ""
    # The organisation's donation page: ask buttons lead there through the click tracker,
    # with amount, frequency and the email's attribution reference added.
    donation_url: str = ""
    # A gift without a reference goes to the supporter's last click within this window.
    attribution_days: float = Field(default=7.0, gt=0)
    # Clicks on two different links of one email within this many seconds: a prefetcher
    # or a security scanner, flagged `automated` and left out of attribution and rates.
    automated_click_seconds: float = Field(default=10.0, ge=0)
    # How long a dashboard sign-in lasts; revoking the key ends it at once.
    staff_session_hours: float = 12.0
    env: Literal["development", "production", "test"] = "development"
    # Where the declared campaign files live (journeys/, segments/, templates/email/).
    project_dir: Path = Path(".")
    # Group-commit window for web signatures: requests arriving within it share one transaction.
    sign_batch_max: int = 256
    sign_batch_wait_ms: float = 2.0
    # --- dispatch (engine/send/dispatcher.py, docs/operations.md)
    from_email: str = "campagnes@example.org"
    from_name: str = "Mobilise"
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
    # PostgreSQL connections a journey pass advances on at once, each over a share of the
    # supporters (engine/scheduler.py); 1 keeps the pass in one transaction. SQLite: always 1.
    advance_connections: int = Field(default=2, ge=1, le=16)

    @field_validator("donation_url")
    @classmethod
    def _donation_page(cls, value: str) -> str:
        if value and not value.lower().startswith(("https://", "http://")):
            raise ValueError("MOBILISE_DONATION_URL must be an absolute http(s) URL")
        return value

    @property
    def block_suppression(self) -> timedelta:
        return timedelta(days=self.block_suppression_days)

    @property
    def attribution_window(self) -> timedelta:
        return timedelta(days=self.attribution_days)

    @property
    def automated_click_window(self) -> timedelta:
        return timedelta(seconds=self.automated_click_seconds)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
