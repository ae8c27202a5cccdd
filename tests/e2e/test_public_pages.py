"""The public petition pages over HTTP, on SQLite and PostgreSQL: the page, the form, the
thank-you page, the form to embed elsewhere, and the static files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.api.app import create_app
from engine.api.public import blocks
from engine.config import Settings
from engine.declarations import read
from engine.rules.signature_rows import WEB_FIELDS
from engine.store import migrate, petitions
from engine.store.db import make_engine, make_sessionmaker
from tests.backends import fresh_postgres_database
from tests.conftest import BACKENDS
from tests.factories import petition_def, unique
from tests.store.journey_helpers import ROOT, SLUG, copy_declared

BASE = "https://m.example.org"


def settings(url: str) -> Settings:
    return Settings(
        database_url=url, project_dir=ROOT, base_url=BASE, sign_batch_wait_ms=0, transport="memory"
    )


@pytest.fixture
def seeded(committed_engine: Engine, now: datetime) -> str:
    """The seed petition, as `mobilise sync` stores it."""
    with make_sessionmaker(committed_engine).begin() as session:
        petitions.upsert(session, read(ROOT).campaigns[0].petition, now=now)
    return SLUG


@pytest.fixture
def client(committed_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings(committed_url)), base_url=BASE) as c:
        yield c


def count(client: TestClient, slug: str) -> int:
    found: int = client.get(f"/api/petitions/{slug}").json()["count"]
    return found


def test_the_petition_page_has_the_text_the_count_and_a_form_with_unticked_boxes(
    client: TestClient, seeded: str
) -> None:
    page = client.get(f"/p/{seeded}")

    assert page.status_code == 200
    html = page.text
    assert '<html lang="fr">' in html
    assert "<h1>Interdire la reconnaissance faciale en France</h1>" in html
    assert "la fin de la vidéosurveillance algorithmique" in html  # the declared text
    assert f'data-count="{count(client, seeded)}"' in html
    assert '<progress id="progress"' in html
    # one box per purpose, each with its label, none ticked
    boxes = re.findall(r"<input[^>]*type=\"checkbox\"[^>]*>", html)
    assert [re.search(r'name="([^"]+)"', b)[1] for b in boxes] == [  # type: ignore[index]
        "consent_updates",
        "consent_fundraising",
    ]
    assert not any("checked" in b for b in boxes)
    assert '<label for="consent_updates">Je souhaite recevoir des nouvelles' in html
    # the GDPR notice names who, why, the rights and the privacy contact
    assert "est responsable du traitement" in html
    assert "effacer" in html
    assert "mailto:donnees@example.org" in html
    # nothing inline: the pages run under default-src 'self'
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html
    assert (
        "default-src 'none'; style-src 'self'; script-src 'self'"
        in (page.headers["content-security-policy"])
    )
    # and the form's page names itself to Mobilise alone, so that its Origin is sent
    assert page.headers["referrer-policy"] == "same-origin"


def test_a_browser_that_signs_lands_on_a_thank_you_page_with_the_title(
    client: TestClient, seeded: str
) -> None:
    before = count(client, seeded)

    answer = client.post(
        f"/api/petitions/{seeded}/signatures",
        data={"email": f"{unique('page')}@example.fr", "consent_updates": "oui"},
        follow_redirects=False,
    )
    thanks = client.get(answer.headers["location"])

    assert (answer.status_code, answer.headers["location"]) == (303, f"/p/{seeded}/merci")
    assert count(client, seeded) == before + 1
    assert "« <strong>Interdire la reconnaissance faciale en France</strong> »" in thanks.text
    assert seeded not in thanks.text.split("<h1>")[1].split("</p>")[0]  # the title, not the slug
    assert f'value="{BASE}/p/{seeded}"' in thanks.text  # the link to share
    assert 'href="https://dons.example.org/stop-reconnaissance-faciale"' in thanks.text


def test_a_script_still_gets_json(client: TestClient, seeded: str) -> None:
    answer = client.post(
        f"/api/petitions/{seeded}/signatures", json={"email": f"{unique('api')}@example.fr"}
    )

    assert answer.status_code == 202
    assert answer.json() == {"status": "received", "petition": seeded}


def test_the_embeddable_form_posts_to_mobilise_with_the_same_fields(
    client: TestClient, seeded: str
) -> None:
    snippet = client.get(f"/p/{seeded}/formulaire").text

    action = re.search(r'action="([^"]+)"', snippet)
    names = set(re.findall(r'name="([^"]+)"', snippet))
    assert action is not None
    assert action[1] == f"{BASE}/api/petitions/{seeded}/signatures"
    assert names - {"consent_updates", "consent_fundraising"} == WEB_FIELDS
    posted = client.post(
        action[1].removeprefix(BASE),
        data={name: "" for name in names} | {"email": f"{unique('embed')}@example.fr"},
        follow_redirects=False,
    )
    assert posted.status_code == 303


def test_an_unknown_petition_is_a_page_not_json(client: TestClient) -> None:
    for path in ("/p/no-such-petition", "/p/no-such-petition/merci"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "Page introuvable" in answer.text


def test_the_images_and_the_style_sheet_are_served(client: TestClient) -> None:
    logo = client.get("/static/images/logo-vigie-libertes.png")
    style = client.get("/static/mobilise/public.css")

    assert (logo.status_code, logo.headers["content-type"]) == (200, "image/png")
    assert logo.content.startswith(b"\x89PNG")
    assert style.status_code == 200
    assert client.get("/static/../organisation.yaml").status_code == 404
    assert client.get("/static/images/nope.png").status_code == 404


def test_the_home_page_lists_the_petitions_when_there_are_several(
    client: TestClient, committed_engine: Engine, now: datetime
) -> None:
    with make_sessionmaker(committed_engine).begin() as session:
        slugs = [petitions.upsert(session, petition_def(), now=now).slug for _ in range(2)]

    home = client.get("/")

    assert all(f'href="/p/{slug}"' in home.text for slug in slugs)


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(fresh_postgres_database())
        else:
            url = f"sqlite:///{tmp_path / 'one.db'}"
        migrate.upgrade(url)
        yield url


def test_the_home_page_is_the_petition_when_there_is_only_one(
    empty_database: str, now: datetime
) -> None:
    engine = make_engine(empty_database)
    with make_sessionmaker(engine).begin() as session:
        petitions.upsert(session, read(ROOT).campaigns[0].petition, now=now)
    engine.dispose()

    with TestClient(create_app(settings(empty_database)), base_url=BASE) as client:
        home = client.get("/")

    assert "<h1>Interdire la reconnaissance faciale en France</h1>" in home.text
    assert f'action="/api/petitions/{SLUG}/signatures"' in home.text


def test_the_text_is_paragraphs_and_lists() -> None:
    found = blocks("Un\ndeux.\n\nNous demandons :\n- ceci,\n  sur deux lignes ;\n- cela.\n")

    assert [(b.text, b.items) for b in found] == [
        ("Un deux.", ()),
        ("Nous demandons :", ("ceci, sur deux lignes ;", "cela.")),
    ]


def test_a_refused_form_is_a_page_that_says_why_and_leads_back(
    client: TestClient, seeded: str
) -> None:
    answer = client.post(
        f"/api/petitions/{seeded}/signatures",
        data={"email": "pas-une-adresse", "consent_updates": "oui"},
        headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"},  # as a browser asks
    )

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert "Votre signature n'est pas enregistrée" in answer.text
    assert "email: " in answer.text
    assert f'href="/p/{seeded}"' in answer.text


def test_the_thank_you_page_may_open_the_donation_page_by_itself(
    committed_url: str, seeded: str, tmp_path: Path
) -> None:
    # Given an organisation that asks for the donation page eight seconds after signing
    copy_declared(tmp_path)
    organisation = tmp_path / "organisation.yaml"
    organisation.write_text(
        organisation.read_text(encoding="utf-8") + "donation_redirect_seconds: 8\n",
        encoding="utf-8",
    )
    app = create_app(settings(committed_url).model_copy(update={"project_dir": tmp_path}))

    with TestClient(app, base_url=BASE) as client:
        thanks = client.get(f"/p/{seeded}/merci")

    donate = "https://dons.example.org/stop-reconnaissance-faciale"
    assert f'<meta http-equiv="refresh" content="8;url={donate}">' in thanks.text
    assert "La page de don s'ouvrira dans 8 secondes." in thanks.text


def test_the_embedded_form_signs_from_an_allowed_site_only(committed_url: str, seeded: str) -> None:
    # Given the organisation's own site on the allow-list
    allowed = "https://www.visages-libres.fr"
    app = create_app(settings(committed_url).model_copy(update={"allowed_origins": allowed}))
    body = {"email": f"{unique('embedded')}@example.fr", "consent_updates": "oui"}
    path = f"/api/petitions/{seeded}/signatures"

    with TestClient(app, base_url=BASE) as client:
        # When its page posts the embedded form, and so does another site's
        ours = client.post(path, data=body, headers={"origin": allowed}, follow_redirects=False)
        theirs = client.post(path, data=body, headers={"origin": "https://elsewhere.example.net"})

    # Then the first goes on to the thank-you page, the second is refused
    assert (ours.status_code, ours.headers["location"]) == (303, f"/p/{seeded}/merci")
    assert theirs.status_code == 403


def test_after_signing_a_double_opt_in_petition_the_page_asks_for_the_confirmation_click(
    client: TestClient, committed_engine: Engine, now: datetime
) -> None:
    with make_sessionmaker(committed_engine).begin() as session:
        definition = petition_def().model_copy(update={"double_opt_in": True})
        slug = petitions.upsert(session, definition, now=now).slug

    thanks = client.get(f"/p/{slug}/merci")

    assert "Cliquez sur son lien pour confirmer votre signature" in thanks.text
    assert "est enregistrée" not in thanks.text
