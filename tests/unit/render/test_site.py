"""The organisation and Mobilise's addresses, written into templates before they compile;
and what validate warns about: placeholders, images that will not load."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import Invalid
from engine.render import site as sites
from engine.render.compiler import compile_template
from engine.render.site import Site
from engine.render.sources import TemplateSource, parse_source
from engine.render.template_checks import site_warnings
from engine.rules.organisation import OrganisationDef, Privacy, Sender
from tests.unit.render.conftest import BASE_URL, SECRET, mjml

OWN = OrganisationDef(
    name="Visages Libres",
    legal_form="collectif",
    address="3 place de la République, 35000 Rennes",
    sender=Sender(name="Visages Libres", email="petitions@visages-libres.fr"),
    donation_url="https://dons.visages-libres.fr/",
    privacy=Privacy(contact="dpo@visages-libres.fr"),
    logo="/static/images/logo.png",
)


def source(body: str, site: Site, subject: str = "Bonjour") -> TemplateSource:
    return parse_source(
        f"---\nsubject: {subject!r}\n---\n{mjml(body)}", name="t", path="t.mjml", site=site
    )


def render(body: str, site: Site, subject: str = "Bonjour") -> tuple[str, str, str]:
    compiled = compile_template(source(body, site, subject))
    email = compiled.render(
        {}, message_id=1, journey="j", step="s", base_url=BASE_URL, secret=SECRET
    )
    return email.subject, email.html, email.text


def test_the_organisation_is_written_in_escaped_and_its_links_are_tracked() -> None:
    # Given an installation with its own organisation
    site = Site.of(OWN, base_url="https://mobilise.visages-libres.fr")

    # When a template names the organisation and links to its donation page
    subject, html, text = render(
        "<mj-text>{{ organisation.name }} &amp; vous<br />{{ organisation.address }}</mj-text>\n"
        '<mj-button href="{{ organisation.donation_url }}?palier=1">Donner</mj-button>',
        site,
        subject="Des nouvelles de {{ organisation.name }}",
    )

    # Then the values are in the email, and the link is tracked like any static one
    assert subject == "Des nouvelles de Visages Libres"
    assert "3 place de la République, 35000 Rennes" in html
    assert "Visages Libres &amp; vous" in html
    assert "dons.visages-libres.fr" not in html
    assert f"{BASE_URL}/c/" in html
    assert "3 place de la République" in text


def test_mobilise_addresses_become_absolute_images_on_the_asset_host() -> None:
    body = (
        '<mj-image src="/static/images/photo.png" alt="Une photo" />\n'
        '<mj-image src="{{ organisation.logo }}" alt="Logo" />\n'
        '<mj-button href="/p/ma-petition">Faire signer</mj-button>'
    )
    on_base = Site.of(OWN, base_url="https://m.visages-libres.fr/")
    on_cdn = Site.of(OWN, base_url="https://m.visages-libres.fr", asset_url="https://cdn.vl.fr/m/")

    _, html, _ = render(body, on_base)
    _, cdn_html, _ = render(body, on_cdn)
    compiled = compile_template(source(body, on_cdn))

    assert 'src="https://m.visages-libres.fr/static/images/photo.png"' in html
    assert 'src="https://m.visages-libres.fr/static/images/logo.png"' in html
    assert 'src="https://cdn.vl.fr/m/images/photo.png"' in cdn_html
    assert 'src="https://cdn.vl.fr/m/images/logo.png"' in cdn_html
    assert compiled.links == ("https://m.visages-libres.fr/p/ma-petition",)


def test_another_organisation_makes_another_template_version() -> None:
    other = OWN.model_copy(update={"name": "Autre nom"})
    body = "<mj-text>{{ organisation.name }}</mj-text>"

    first = source(body, Site.of(OWN, base_url=BASE_URL))
    second = source(body, Site.of(other, base_url=BASE_URL))

    assert first.version != second.version


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("{{ organisation.colour }}", "unknown organisation setting 'colour'"),
        ("{{ organisation.website }}", "organisation.website is not set in organisation.yaml"),
    ],
)
def test_an_unknown_or_unset_setting_is_a_problem_at_its_line(
    expression: str, message: str
) -> None:
    with pytest.raises(Invalid) as raised:
        source(f"<mj-text>\n{expression}\n</mj-text>", Site.of(OWN, base_url=BASE_URL))

    assert [str(p).split(" (known")[0] for p in raised.value.problems] == [f"t.mjml:10: {message}"]


def images_dir(tmp_path: Path, *names: str) -> Path:
    static = tmp_path / "static"
    (static / "images").mkdir(parents=True)
    for name in names:
        (static / "images" / name).write_bytes(b"\x89PNG")
    return static


def template(tmp_path: Path, body: str) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "t.mjml").write_text(f"---\nsubject: Bonjour\n---\n{mjml(body)}", encoding="utf-8")
    return directory


def test_validate_warns_about_images_that_will_not_load_and_placeholder_links(
    tmp_path: Path,
) -> None:
    # Given a template with a present image, a missing one, one elsewhere, and a link
    # left from the example
    site = Site.of(OWN, base_url=BASE_URL, static_dir=images_dir(tmp_path, "here.png"))
    directory = template(
        tmp_path,
        '<mj-image src="/static/images/here.png" alt="a" />\n'
        '<mj-image src="/static/images/gone.png" alt="b" />\n'
        '<mj-image src="https://cdn.elsewhere.net/c.png" alt="c" />\n'
        '<mj-button href="https://www.example.org/actualites">Lire</mj-button>\n'
        '<mj-image src="{{ organisation.logo }}" alt="logo" />',
    )

    # When validate looks at the templates
    found = site_warnings(directory, site)

    # Then each problem is a warning at its line; the present image is fine
    path = directory / "t.mjml"
    assert [str(p).split(" (hint")[0] for p in found.images] == [
        f"{path}:10: image {BASE_URL}/static/images/gone.png will not load:"
        f" no file {tmp_path / 'static' / 'images' / 'gone.png'}",
        f"{path}:11: image https://cdn.elsewhere.net/c.png is not served by Mobilise:"
        " validate cannot check that it loads",
        f"{path}:13: image {BASE_URL}/static/images/logo.png will not load:"
        f" no file {tmp_path / 'static' / 'images' / 'logo.png'}",
    ]
    assert [(p.line, p.message) for p in found.placeholders] == [
        (
            12,
            "'https://www.example.org/actualites' is a placeholder"
            " (an address reserved for examples)",
        )
    ]


def test_the_sample_installation_renders_the_seed_organisation() -> None:
    assert sites.sample().constants()["logo"] == (
        "https://mobilise.example.org/static/images/logo-vigie-libertes.png"
    )
