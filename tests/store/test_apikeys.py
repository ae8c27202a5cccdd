"""API keys: shown once, stored as a hash, revocable, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.rules.staff import Role
from engine.store import apikeys
from engine.store.models import ApiKey


def test_a_new_key_authenticates_its_holder_and_only_its_hash_is_stored(
    session: Session, now: datetime
) -> None:
    # Given a key made for a manager
    key_id, key = apikeys.create(session, role=Role.manager, label="Léa", now=now)

    # Then it authenticates as that manager, and the database never holds the key itself
    assert apikeys.authenticate(session, key) == apikeys.Staff(key_id, Role.manager, "Léa")
    stored = session.scalars(select(ApiKey.key_hash)).all()
    assert key not in stored
    assert all(len(h) == 64 for h in stored)


def test_unknown_and_malformed_keys_authenticate_nobody(session: Session, now: datetime) -> None:
    _, key = apikeys.create(session, role=Role.admin, label="", now=now)

    assert apikeys.authenticate(session, key + "x") is None
    assert apikeys.authenticate(session, "") is None
    assert apikeys.authenticate(session, key.removeprefix(apikeys.PREFIX)) is None


def test_a_revoked_key_stops_working_and_revoking_twice_changes_nothing(
    session: Session, now: datetime
) -> None:
    key_id, key = apikeys.create(session, role=Role.fundraiser, label="", now=now)
    assert apikeys.active(session, key_id) is not None

    assert apikeys.revoke(session, key_id, now=now) is True
    assert apikeys.revoke(session, key_id, now=now) is False

    assert apikeys.authenticate(session, key) is None
    assert apikeys.active(session, key_id) is None
