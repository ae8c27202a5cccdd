"""Third-party reference data the tests check against, kept in the repository (see each
folder's README and LICENSE): the tests never read anything outside the repository."""

from __future__ import annotations

from pathlib import Path

SENDGRID = Path(__file__).resolve().parent / "sendgrid"
