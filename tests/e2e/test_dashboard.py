"""The staff dashboard and the preview API: sign-in with an API key, roles, and the email
preview (the same rendering as `mobilise preview`), on SQLite and PostgreSQL."""

from __future__ import annotations

import html
from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from engine.api.app import create_app
from engine.api.staff import COOKIE
from engine.render import tokens
from engine.rules.staff import Role
from tests.e2e import dashboard_helpers as given
from tests.e2e.dashboard_helpers import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(committed_url: str, clock: Clock) -> Iterator[TestClient]:
    yield from given.client(committed_url, clock)


@pytest.fixture
def manager(committed_engine: Engine) -> str:
    return given.new_key(committed_engine, Role.manager, "Léa")[1]


# --- signing in


def test_a_sign_in_is_committed_before_its_answer_goes_out(
    committed_url: str, clock: Clock, manager: str
) -> None:
    # Given the app, noting when its database commits and when an answer starts
    app = create_app(given.settings(committed_url), clock=clock)
    happened: list[str] = []
    event.listen(app.state.engine, "commit", lambda _connection: happened.append("commit"))

    async def noting(scope: Any, receive: Any, send: Any) -> None:
        async def noted(sent: MutableMapping[str, Any]) -> None:
            if sent["type"] == "http.response.start":
                happened.append(f"answer {sent['status']}")
            await send(sent)

        await app(scope, receive, noted)

    with TestClient(noting, follow_redirects=False) as client:
        # When a manager signs in (the staff session written in the route's transaction)
        answer = client.post("/dashboard/login", data={"key": manager})

    # Then it was committed before the answer started: the browser, following the answer
    # at once, finds the session stored (it was sent back to the sign-in form now and
    # then), and a commit that fails is never answered as a success
    assert answer.status_code == 303
    assert happened == ["commit", "answer 303"]


def test_a_page_asked_without_signing_in_leads_to_the_login_form_and_back(
    client: TestClient, manager: str
) -> None:
    # When someone not signed in asks for a preview
    answer = client.get("/dashboard/templates/update", follow_redirects=False)
    # Then they are sent to the login form, which remembers where they were going
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login?next=/dashboard/templates/update"
    form = client.get(answer.headers["location"])
    assert 'value="/dashboard/templates/update"' in form.text

    # And signing in there takes them back to it
    signed = client.post(
        "/dashboard/login",
        data={"key": manager, "next": "/dashboard/templates/update"},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/dashboard/templates/update"
    assert client.get("/dashboard/templates/update").status_code == 200


def test_the_session_cookie_is_http_only_strict_scoped_and_holds_no_key(
    client: TestClient, manager: str
) -> None:
    signed = client.post("/dashboard/login", data={"key": manager}, follow_redirects=False)

    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Secure"):
        assert flag in cookie
    assert manager not in cookie


def test_a_wrong_key_is_refused_with_a_message_and_no_cookie(client: TestClient) -> None:
    answer = client.post("/dashboard/login", data={"key": "mob_nope"}, follow_redirects=False)

    assert answer.status_code == 401
    assert "Unknown or revoked key." in answer.text
    assert "set-cookie" not in answer.headers


def test_login_never_redirects_out_of_the_dashboard(client: TestClient, manager: str) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/api/petitions/x"):
        signed = client.post(
            "/dashboard/login", data={"key": manager, "next": target}, follow_redirects=False
        )
        assert signed.headers["location"] == "/dashboard"


def test_revoking_a_key_signs_its_holder_out_at_once(
    client: TestClient, committed_engine: Engine
) -> None:
    key_id, key = given.new_key(committed_engine, Role.manager)
    given.sign_in(client, key)
    assert client.get("/dashboard", follow_redirects=False).status_code == 200

    given.revoke(committed_engine, key_id)

    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_session_ends_after_its_lifetime(client: TestClient, manager: str, clock: Clock) -> None:
    given.sign_in(client, manager)
    clock.now += timedelta(hours=11, minutes=59)
    assert client.get("/dashboard", follow_redirects=False).status_code == 200

    clock.now += timedelta(minutes=2)

    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_forged_or_tampered_cookie_signs_nobody_in(client: TestClient, manager: str) -> None:
    given.sign_in(client, manager)
    real = client.cookies[COOKIE]
    token, _, rest = real.partition(".")

    for forged in (f"{token[::-1]}.{rest}", real[:-2] + "xx", token, "1", ""):
        client.cookies.clear()
        client.cookies.set(COOKIE, forged)
        assert client.get("/dashboard", follow_redirects=False).status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE, real)
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


def test_signing_out_clears_the_session(client: TestClient, manager: str) -> None:
    given.sign_in(client, manager)

    client.post("/dashboard/logout", follow_redirects=False)

    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_another_site_cannot_post_the_dashboards_forms(client: TestClient, manager: str) -> None:
    # Given a page of another site posting a staff member's browser into the sign-in with
    # the attacker's own key (login CSRF), then into the sign-out
    foreign = {"Origin": "https://evil.example"}
    planted = client.post(
        "/dashboard/login", data={"key": manager}, headers=foreign, follow_redirects=False
    )
    # Then neither is taken: no cookie is set, and a session opened here stays open
    assert planted.status_code == 403
    assert COOKIE not in planted.cookies
    given.sign_in(client, manager)
    out = client.post("/dashboard/logout", headers=foreign, follow_redirects=False)
    assert out.status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    # While the dashboard's own pages post as before (Origin: this site)
    own = client.post("/dashboard/logout", headers={"Origin": str(client.base_url).rstrip("/")})
    assert own.status_code == 200  # followed to the sign-in form
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_a_cookie_kept_after_signing_out_opens_nothing(client: TestClient, manager: str) -> None:
    # Given a session whose cookie someone copied, and a second one of the same key
    given.sign_in(client, manager)
    copied = client.cookies[COOKIE]
    given.sign_in(client, manager)
    other = client.cookies[COOKIE]
    client.cookies.set(COOKIE, copied)
    # When its holder signs out
    assert client.post("/dashboard/logout", follow_redirects=False).status_code == 303
    # Then the copy opens nothing, at once, and the other session is still open
    client.cookies.set(COOKIE, copied)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, other)
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


# --- roles


def test_a_fundraiser_sees_the_overview_but_not_the_previews(
    client: TestClient, committed_engine: Engine
) -> None:
    given.sign_in(client, given.new_key(committed_engine, Role.fundraiser)[1])

    overview = client.get("/dashboard")
    assert overview.status_code == 200
    assert "/dashboard/templates/" not in overview.text
    denied = client.get("/dashboard/templates/update")
    assert denied.status_code == 403
    assert "needs the manager role" in denied.text
    assert denied.headers["content-type"].startswith("text/html")


# --- pages


def test_the_overview_lists_petitions_with_their_count_and_the_templates(
    client: TestClient, manager: str
) -> None:
    given.sign_in(client, manager)

    page = client.get("/dashboard")

    assert page.status_code == 200
    assert "Léa · manager" in page.text
    for name in ("thanked", "update", "ask-first", "ask-additional", "confirm"):
        assert f'href="/dashboard/templates/{name}"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_preview_shows_headers_text_and_the_html_in_a_sandboxed_frame(
    client: TestClient, manager: str
) -> None:
    given.sign_in(client, manager)

    page = client.get("/dashboard/templates/update")

    assert page.status_code == 200
    # The sample data, as `mobilise preview` shows it
    assert "Nous sommes 140\u00a0213 : merci Camille !" in html.unescape(page.text)
    unsubscribe = tokens.unsubscribe_token("dashboard-secret", 0)
    assert f"&lt;https://m.example.org/u/{unsubscribe}&gt;" in page.text
    assert "List-Unsubscribe=One-Click" in page.text
    assert "Bonjour Camille," in page.text
    # The email's HTML only ever inside a sandboxed iframe, escaped into its srcdoc
    assert '<iframe id="html" title="HTML part" sandbox srcdoc="&lt;!doctype html&gt;' in page.text
    assert '<html lang="fr"' not in page.text


def test_a_supporter_preview_shows_their_name_literally(
    client: TestClient, manager: str, committed_engine: Engine
) -> None:
    # Given supporters whose names look like markup and like template code
    script = given.new_supporter(committed_engine, "<script>alert(1)</script>")
    braces = given.new_supporter(committed_engine, "{{ 7*7 }}")
    given.sign_in(client, manager)

    # When a manager previews the thank-you for each of them
    scripted = client.post("/dashboard/templates/thanked", data={"supporter": script})
    braced = client.post("/dashboard/templates/thanked", data={"supporter": braces})

    # Then the names are shown as written, never run or evaluated
    assert scripted.status_code == 200
    assert "<script>alert(1)</script>" not in scripted.text
    text_part = scripted.text.split('<pre id="text">')[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text_part
    assert "{{ 7*7 }}" in html.unescape(braced.text)
    assert "49" not in braced.text.split('<pre id="text">')[1].split("</pre>")[0]


def test_an_unknown_supporter_or_template_is_a_404_page(client: TestClient, manager: str) -> None:
    given.sign_in(client, manager)

    nobody = client.post("/dashboard/templates/update", data={"supporter": "nobody@example.org"})
    assert nobody.status_code == 404
    assert "no supporter with that address" in nobody.text
    for name in ("nothing", "..%2F..%2Fpyproject", "partials"):
        assert client.get(f"/dashboard/templates/{name}").status_code == 404


# --- the same preview as JSON, with the key as a Bearer token


def test_the_preview_api_needs_a_manager_key(client: TestClient, committed_engine: Engine) -> None:
    anonymous = client.post("/api/templates/update/preview")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    fundraiser = given.new_key(committed_engine, Role.fundraiser)[1]
    denied = client.post(
        "/api/templates/update/preview", headers={"Authorization": f"Bearer {fundraiser}"}
    )
    assert denied.status_code == 403
    assert "manager" in denied.json()["error"]


def test_the_preview_api_renders_with_sample_or_a_supporters_data(
    client: TestClient, manager: str, committed_engine: Engine
) -> None:
    auth = {"Authorization": f"Bearer {manager}"}
    sample = client.post("/api/templates/update/preview", headers=auth).json()
    assert sample["subject"] == "Nous sommes 140\u00a0213 : merci Camille !"
    assert sample["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sample["html_bytes"] < 102 * 1024
    assert sample["clipped_by_gmail"] is False

    email = given.new_supporter(committed_engine, "Yanis")
    real = client.post(
        "/api/templates/update/preview", headers=auth, json={"supporter": email}
    ).json()
    assert real["subject"] == "Nous sommes 140\u00a0213 : merci Yanis !"
    assert "Bonjour Yanis," in real["text"]
