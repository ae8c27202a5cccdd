"""`mobilise preview`: sample data, a real supporter, and --out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.config import get_settings
from engine.render import tokens
from engine.store import migrate
from engine.store.db import make_engine, make_sessionmaker
from engine.store.models import Supporter

runner = CliRunner()


@pytest.fixture(scope="module")
def preview_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database of this module's own: its committed supporter stays out of others' way."""
    url = f"sqlite:///{tmp_path_factory.mktemp('preview') / 'mobilise.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch, preview_db: str, project_dir: Path
) -> Iterator[None]:
    monkeypatch.setenv("MOBILISE_DATABASE_URL", preview_db)
    monkeypatch.setenv("MOBILISE_PROJECT_DIR", str(project_dir))
    monkeypatch.setenv("MOBILISE_SECRET_KEY", "preview-secret")
    monkeypatch.setenv("MOBILISE_BASE_URL", "https://m.example.org")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("configured")
def test_preview_prints_headers_text_and_html_with_sample_data() -> None:
    # When the update is previewed without a supporter
    result = runner.invoke(app, ["preview", "update"])
    # Then headers, the text part and the HTML are printed, personalised with samples
    assert result.exit_code == 0, result.output
    assert "Subject: Nous sommes 140\u00a0213 : merci Camille !" in result.output
    assert "X-Mobilise-Step: update" in result.output
    unsubscribe = tokens.unsubscribe_token("preview-secret", 0)
    assert f"List-Unsubscribe: <https://m.example.org/u/{unsubscribe}>" in result.output
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in result.output
    assert "Bonjour Camille," in result.output
    assert '<html lang="fr"' in result.output
    # And its images are the project's, at Mobilise's own address
    assert 'src="https://m.example.org/static/images/tournee-flamme.png"' in result.output


@pytest.mark.usefixtures("configured")
def test_preview_writes_the_html_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "thanked.html"
    result = runner.invoke(app, ["preview", "thanked", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "<html" not in result.output
    assert "Subject: Merci pour votre signature, Camille !" in result.output
    assert "List-Unsubscribe" not in result.output  # transactional
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")


@pytest.mark.usefixtures("configured")
def test_preview_with_a_real_supporter(preview_db: str, now: datetime) -> None:
    # Given a supporter whose name is markup
    engine = make_engine(preview_db)
    with make_sessionmaker(engine).begin() as session:
        session.add(
            Supporter(email="preview-zoe@example.org", first_name="<b>Zoé</b>", created_at=now)
        )
    engine.dispose()
    # When previewed for that supporter (address in another case)
    result = runner.invoke(app, ["preview", "thanked", "--supporter", "Preview-Zoe@Example.org"])
    # Then her name appears, as typed in the text and escaped in the HTML
    assert result.exit_code == 0, result.output
    assert "Bonjour <b>Zoé</b>," in result.output
    assert "Bonjour &lt;b&gt;Zoé&lt;/b&gt;," in result.output


@pytest.mark.usefixtures("configured")
def test_preview_reports_unknown_supporter_and_template() -> None:
    result = runner.invoke(app, ["preview", "thanked", "--supporter", "nobody@example.org"])
    assert result.exit_code == 1
    assert "no supporter with that address" in result.output
    result = runner.invoke(app, ["preview", "nope"])
    assert result.exit_code == 1
    assert "no template 'nope'" in result.output
