"""organisation.yaml from the shell: validate warns about placeholders and images that will
not load; production refuses to start with placeholders; emails go out as the organisation."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from engine.cli import app
from engine.config import get_settings
from tests.store.cli_helpers import runner, signed_up

OWN = """\
name: Visages Libres
legal_form: collectif
address: 3 place de la République, 35000 Rennes
website: https://visages-libres.fr/
sender:
  name: Visages Libres
  email: petitions@visages-libres.fr
reply_to: equipe@visages-libres.fr
donation_url: https://dons.visages-libres.fr/
privacy:
  contact: dpo@visages-libres.fr
  policy_url: https://visages-libres.fr/donnees
logo: /static/images/logo-vigie-libertes.png
"""


def own_organisation(project: Path) -> None:
    (project / "organisation.yaml").write_text(OWN, encoding="utf-8")
    update = project / "templates" / "email" / "update.mjml"
    update.write_text(
        update.read_text(encoding="utf-8").replace("www.example.org", "visages-libres.fr"),
        encoding="utf-8",
    )


def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILISE_ENV", "production")
    monkeypatch.setenv("MOBILISE_SECRET_KEY", "a-production-secret-of-at-least-32-bytes")
    get_settings.cache_clear()


def test_validate_warns_about_placeholders_and_missing_images_and_exits_0(
    project: Path,
) -> None:
    # Given the shipped example organisation, and the update's photo gone
    (project / "static" / "images" / "tournee-flamme.png").unlink()

    result = runner.invoke(app, ["validate"])

    # Then validate passes, with a warning at each placeholder and at the image
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert all(": warning: " in line for line in warnings)
    assert any(
        line.startswith("organisation.yaml:13: warning: sender.email 'campagnes@example.org'")
        or line.startswith(f"{project / 'organisation.yaml'}:13: warning: sender.email")
        for line in warnings
    )
    update = project / "templates" / "email" / "update.mjml"
    assert any(
        line.startswith(f"{update}:19: warning: image http://127.0.0.1:8000/static/images/")
        and "will not load" in line
        for line in warnings
    )
    assert any(
        line.startswith(f"{update}:26: warning: 'https://www.example.org/") for line in warnings
    )
    assert "warning(s)" in result.stdout


def test_an_organisation_of_its_own_validates_without_warnings(project: Path) -> None:
    own_organisation(project)

    result = runner.invoke(app, ["validate"])

    assert result.exit_code == 0, result.output
    assert result.stderr == ""


@pytest.mark.parametrize("command", [["run"], ["worker"], ["tick"]])
def test_production_refuses_to_start_with_placeholders(
    project: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    production(monkeypatch)

    result = runner.invoke(app, command)

    assert result.exit_code == 1
    assert "production refuses to start" in result.stderr
    assert "sender.email 'campagnes@example.org' is a placeholder" in result.stderr
    assert "Mobilise is serving" not in result.stdout


def test_in_production_emails_go_out_as_the_organisation(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an organisation of its own, in production, and one signer
    own_organisation(project)
    production(monkeypatch)
    monkeypatch.setenv("MOBILISE_BASE_URL", "https://mobilise.visages-libres.fr")
    get_settings.cache_clear()
    signed_up(project, {"carol": (False, False)})

    # When the thank-you is sent
    ticked = runner.invoke(app, ["tick", "--now", "2026-05-13T11:30:00"])

    # Then it is signed by the organisation, answers go to it, and it shows its address
    # and logo from Mobilise's own address
    assert ticked.exit_code == 0, ticked.output
    (sent,) = (project / "var" / "outbox").glob("*.eml")
    message = email.message_from_bytes(sent.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    assert message["From"] == "Visages Libres <petitions@visages-libres.fr>"
    assert message["Reply-To"] == "equipe@visages-libres.fr"
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "3 place de la République, 35000 Rennes" in content
    assert "Vigie Libertés" not in content
    assert 'src="https://mobilise.visages-libres.fr/static/images/logo-vigie-libertes.png"' in (
        content
    )


def test_the_environment_overrides_the_sender(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_organisation(project)
    monkeypatch.setenv("MOBILISE_FROM_EMAIL", "not-an-address")
    get_settings.cache_clear()

    result = runner.invoke(app, ["tick"])

    assert result.exit_code == 1
    assert "MOBILISE_FROM_EMAIL: " in result.stderr
