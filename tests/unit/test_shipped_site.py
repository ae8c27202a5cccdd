"""The seed campaign as shipped: its organisation reaches every email, its images are all
there, and `make run` says where to go."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.server import banner
from engine.config import Settings
from engine.render import variables
from engine.render.library import TemplateLibrary
from engine.send.identity import identity, templates_dir

SEEDS = ["ask-additional", "ask-first", "confirm", "thanked", "update"]


@pytest.fixture(scope="module")
def shipped() -> Settings:
    return Settings(project_dir=Path(__file__).resolve().parents[2], base_url="https://m.vl.fr")


@pytest.mark.parametrize("name", SEEDS)
def test_every_seed_email_shows_the_organisation_and_its_logo(shipped: Settings, name: str) -> None:
    site = identity(shipped).site
    library = TemplateLibrary(templates_dir(shipped), site=site)

    email = library.get(name).render(
        variables.sample_context(), message_id=3, journey="j", step=name,
        base_url=shipped.base_url, secret="s",
    )  # fmt: skip

    assert 'src="https://m.vl.fr/static/images/logo-vigie-libertes.png"' in email.html
    assert "Vigie Libertés, association loi 1901" in email.text
    assert "{{" not in email.html


def test_the_shipped_images_are_all_there_and_only_the_example_values_are_warned(
    shipped: Settings,
) -> None:
    found = identity(shipped)

    assert found.images == []
    assert found.placeholders  # the example organisation: validate warns, production refuses
    assert {p.file for p in found.placeholders} == {
        str(shipped.project_dir / "organisation.yaml"),
        str(templates_dir(shipped) / "update.mjml"),
    }


def test_make_run_says_where_to_go() -> None:
    text = banner(
        Settings(base_url="http://127.0.0.1:8000"),
        host="127.0.0.1",
        port=8000,
        slugs=["stop-reconnaissance-faciale"],
    )

    assert "http://127.0.0.1:8000/   (http://127.0.0.1:8000/p/stop-reconnaissance-faciale)" in text
    assert "http://127.0.0.1:8000/dashboard" in text
    assert "mobilise apikey create --role admin" in text
    assert "public address" not in text  # the same as where it listens
    assert "MOBILISE_BASE_URL" in banner(
        Settings(base_url="https://petition.vl.fr"), host="0.0.0.0", port=8000, slugs=[]
    )
