"""No constant secret: without MOBILISE_SECRET_KEY a random one is made once and kept
under the var folder; production refuses a missing or short secret. Folders are tmp dirs."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config import SECRET_FILE, Settings


def test_without_a_key_a_random_secret_is_made_once_private_and_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given no MOBILISE_SECRET_KEY and an empty var folder
    caplog.set_level(logging.INFO, logger="engine.config")

    # When the settings are read twice (a start, then a restart)
    first = Settings(var_dir=tmp_path / "var").secret_key
    announced = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    again = Settings(var_dir=tmp_path / "var").secret_key

    # Then a long random secret was kept in var/secret_key, readable by its owner only
    kept = tmp_path / "var" / SECRET_FILE
    assert first == again == kept.read_text().strip()
    assert len(first) >= 64
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # And its making was logged once, naming the file (not the secret)
    assert len(announced) == 1
    assert str(kept) in announced[0]
    assert first not in announced[0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # And nothing but the secret is left in the folder
    assert [p.name for p in kept.parent.iterdir()] == [SECRET_FILE]


def test_two_installations_never_share_a_secret(tmp_path: Path) -> None:
    assert (
        Settings(var_dir=tmp_path / "a").secret_key != Settings(var_dir=tmp_path / "b").secret_key
    )


def test_a_configured_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", secret_key="mine")

    assert settings.secret_key == "mine"
    assert not (tmp_path / "var").exists()


def test_an_emptied_secret_file_is_an_error_not_a_new_secret(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("\n")

    with pytest.raises(ValidationError, match="restore it from a backup"):
        Settings(var_dir=tmp_path)


@pytest.mark.parametrize("secret", ["", "x", "a" * 31])
def test_production_refuses_a_missing_or_short_secret(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes in production"):
        Settings(env="production", secret_key=secret, var_dir=tmp_path)
    assert not (tmp_path / SECRET_FILE).exists()  # production never makes one


def test_production_takes_a_secret_of_32_bytes(tmp_path: Path) -> None:
    assert Settings(env="production", secret_key="é" * 16, var_dir=tmp_path).env == "production"
