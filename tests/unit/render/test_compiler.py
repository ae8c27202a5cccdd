"""Compiling once, rendering per recipient: escaping, sandbox, links, headers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TypedDict

import pytest
from jinja2 import TemplateError, UndefinedError
from markupsafe import Markup

from engine.errors import Invalid
from engine.render import sandbox, tokens
from engine.render.compiler import CompileCache, compile_template
from engine.render.links import DONATION_LINK
from tests.unit.render.conftest import BASE_URL, SECRET, Make


class RenderArgs(TypedDict):
    message_id: int
    journey: str
    step: str
    base_url: str
    secret: str


RENDER: RenderArgs = {
    "message_id": 42,
    "journey": "j",
    "step": "s",
    "base_url": BASE_URL,
    "secret": SECRET,
}


def problems_of(exc: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [str(p) for p in exc.value.problems]


@pytest.mark.parametrize(
    "name", ["<script>alert(1)</script>", "{{ 7*7 }}", "{% if 1 %}x{% endif %}"]
)
def test_a_hostile_first_name_is_shown_literally(make_source: Make, name: str) -> None:
    # Given a template that greets the supporter by first name
    compiled = compile_template(make_source("<mj-text>Bonjour {{ first_name }} !</mj-text>"))
    # When the first name is markup or Jinja
    email = compiled.render({"first_name": name}, **RENDER)
    # Then the HTML shows it escaped, the text and subject as typed, and nothing ran
    assert "<script>alert" not in email.html
    assert f"Bonjour {name.replace('<', '&lt;').replace('>', '&gt;')} !" in email.html
    assert f"Bonjour {name} !" in email.text
    assert email.subject == f"Bonjour {name}"
    assert "49" not in email.html + email.text


def test_a_newline_in_a_name_cannot_add_a_header(make_source: Make) -> None:
    compiled = compile_template(make_source("<mj-text>x</mj-text>"))
    email = compiled.render({"first_name": "Eve\r\nBcc: victim@example.org"}, **RENDER)
    assert email.subject == "Bonjour Eve Bcc: victim@example.org"


@pytest.mark.parametrize(
    "expression",
    [
        "{{ first_name.__class__ }}",
        "{{ first_name['__class__'] }}",
        "{{ first_name.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ _secret }}",
    ],
)
def test_unsafe_attribute_access_is_refused_with_its_line(
    make_source: Make, expression: str
) -> None:
    # Given a template reaching for Python internals on line 10 of its file
    source = make_source(f"<mj-text>\n{expression}\n</mj-text>")
    # When it is compiled, then it is refused, pointing at that line
    with pytest.raises(Invalid) as exc:
        compile_template(source)
    assert any(re.match(r"t\.mjml:10: .*(not allowed|reserved)", p) for p in problems_of(exc))


def test_the_sandbox_also_refuses_at_render_time(make_source: Make) -> None:
    # Even a construct the static scan cannot see (an attribute name built at run
    # time) is stopped by the sandbox itself.
    compiled = compile_template(
        make_source("<mj-text>{{ first_name|attr('__class__') }}</mj-text>")
    )
    with pytest.raises(TemplateError):
        compiled.render({"first_name": "x"}, **RENDER)


def test_jinja_include_is_refused(make_source: Make) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source('<mj-text>{% include "x.html" %}</mj-text>'))
    assert any("mj-include" in p for p in problems_of(exc))


def test_jinja_syntax_errors_point_at_the_source_line(make_source: Make) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source("<mj-text>\n{% if first_name %}\n</mj-text>"))
    assert any(p.startswith("t.mjml:") and "Jinja" in p for p in problems_of(exc))


def test_jinja_comparisons_survive_mjml(make_source: Make) -> None:
    # mjml-python would escape `>` to `&gt;` and break the tag; placeholders keep it.
    body = "<mj-text>{% if signature_count > 100 %}beaucoup{% else %}peu{% endif %}</mj-text>"
    email = compile_template(make_source(body)).render(
        {"first_name": "A", "signature_count": 140_000}, **RENDER
    )
    assert "beaucoup" in email.html
    assert "beaucoup" in email.text


def test_links_are_extracted_in_order_and_rewritten(make_source: Make) -> None:
    # Given a template with two tracked links, a mailto and the unsubscribe link
    body = (
        '<mj-button href="https://a.example.org/petition?x=1&amp;y=2">Signer</mj-button>\n'
        '<mj-text><a href="https://b.example.org/">B</a> <a href="mailto:a@example.org">M</a>'
        ' <a href="{{ unsubscribe_url }}">Se désinscrire</a></mj-text>'
    )
    compiled = compile_template(make_source(body))
    # Then the version's links are the two http(s) URLs, in document order, unescaped
    assert compiled.links == ("https://a.example.org/petition?x=1&y=2", "https://b.example.org/")
    # When rendered, every tracked URL points at /c/{token} for (message, position)
    email = compiled.render({"first_name": "A"}, **RENDER)
    found = re.findall(rf'href="{BASE_URL}/c/([\w-]+)"', email.html)
    assert [tokens.read_click_token(SECRET, t) for t in found] == [(42, 0), (42, 1)]
    assert "a.example.org" not in email.html
    assert "b.example.org" not in email.text
    assert 'href="mailto:a@example.org"' in email.html
    unsubscribe = re.findall(rf"{BASE_URL}/u/([\w-]+)", email.html)
    assert [tokens.read_unsubscribe_token(SECRET, t) for t in unsubscribe] == [42]
    # And the text part carries the same tracked URLs
    assert re.findall(rf"{BASE_URL}/c/([\w-]+)", email.text) == found


@pytest.mark.parametrize(
    "href",
    [
        "https://example.org/?who={{ first_name }}",
        "{{ first_name }}",
        "https://example.org/{% if first_name %}a{% endif %}",
    ],
)
def test_dynamic_links_are_refused(make_source: Make, href: str) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source(f'<mj-text>\n<a href="{href}">x</a>\n</mj-text>'))
    assert any(p.startswith("t.mjml:10: dynamic link") for p in problems_of(exc))


def test_relative_links_are_refused(make_source: Make) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source('<mj-text><a href="/petition">x</a></mj-text>'))
    assert any("not an absolute http(s) URL" in p for p in problems_of(exc))


def test_engine_action_urls_are_allowed_untracked(make_source: Make) -> None:
    compiled = compile_template(make_source('<mj-button href="{{ confirm_url }}">OK</mj-button>'))
    assert compiled.links == ()
    assert "confirm_url" in compiled.variables
    email = compiled.render({"first_name": "A", "confirm_url": "https://x.org/ok?t=1"}, **RENDER)
    assert 'href="https://x.org/ok?t=1"' in email.html


def test_non_transactional_emails_carry_one_click_unsubscribe(make_source: Make) -> None:
    email = compile_template(make_source("<mj-text>x</mj-text>")).render(
        {"first_name": "A"}, **RENDER
    )
    token = tokens.unsubscribe_token(SECRET, 42)
    assert email.headers == {
        "X-Mobilise-Journey": "j",
        "X-Mobilise-Step": "s",
        "X-Mobilise-Message": "42",
        "List-Unsubscribe": f"<{BASE_URL}/u/{token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_transactional_emails_have_no_list_unsubscribe(make_source: Make) -> None:
    source = make_source("<mj-text>x</mj-text>", front="transactional: true\n")
    email = compile_template(source).render({"first_name": "A"}, **RENDER)
    assert email.transactional
    assert set(email.headers) == {"X-Mobilise-Journey", "X-Mobilise-Step", "X-Mobilise-Message"}


def test_header_arguments_must_be_single_lines(make_source: Make) -> None:
    compiled = compile_template(make_source("<mj-text>x</mj-text>"))
    with pytest.raises(ValueError, match="single line"):
        compiled.render({"first_name": "A"}, **(RENDER | {"step": "s\r\nBcc: x@example.org"}))


def test_a_missing_variable_is_an_error_not_a_blank(make_source: Make) -> None:
    compiled = compile_template(make_source("<mj-text>{{ signature_count }}</mj-text>"))
    assert compiled.variables == {"first_name", "signature_count"}
    with pytest.raises(UndefinedError):
        compiled.render({"first_name": "A"}, **RENDER)


def test_jinja_between_sections_is_reported(make_source: Make) -> None:
    # MJML drops text between sections, so a tag there would silently vanish.
    raw = (
        '---\nsubject: "x"\n---\n<mjml lang="fr"><mj-body>\n{% if first_name %}\n'
        "<mj-section><mj-column><mj-text>x</mj-text></mj-column></mj-section>\n"
        "{% endif %}\n</mj-body></mjml>\n"
    )
    with pytest.raises(Invalid) as exc:
        compile_template(make_source("", raw=raw))
    assert any(
        p.startswith("t.mjml:5: {% if first_name %} is dropped by MJML") for p in problems_of(exc)
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<mj-image src="https://x.org/a.png" />', "t.mjml:9: <mj-image> needs an alt text"),
        ("<mj-txt>x</mj-txt>", "t.mjml:9: unknown MJML tag <mj-txt>"),
        ('<mj-text><img src="https://x.org/a.png"></mj-text>', "t.mjml:9: <img> needs an alt"),
    ],
)
def test_mjml_structure_problems_have_lines(make_source: Make, body: str, message: str) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source(body))
    assert any(p.startswith(message) for p in problems_of(exc))


def test_an_unclosed_mjml_tag_is_reported(make_source: Make) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source("<mj-text>x"))
    assert any("is never closed" in p or "closes nothing" in p for p in problems_of(exc))


def test_lang_is_required(make_source: Make) -> None:
    raw = '---\nsubject: "x"\n---\n<mjml><mj-body><mj-section></mj-section></mj-body></mjml>\n'
    with pytest.raises(Invalid) as exc:
        compile_template(make_source("", raw=raw))
    assert 't.mjml:4: <mjml> needs lang="fr"' in " ".join(problems_of(exc))


def test_each_version_compiles_once(make_source: Make) -> None:
    # Given a cache and one template version
    cache = CompileCache()
    source = make_source("<mj-text>Bonjour {{ first_name }}</mj-text>")
    # When 1,000 recipients are rendered, fetching the template each time
    for message_id in range(1000):
        cache.get(source).render({"first_name": "A"}, **(RENDER | {"message_id": message_id}))
    # Then MJML ran once
    assert (cache.compiles, cache.hits) == (1, 999)
    # And a changed template is a new version, compiled once more
    changed = make_source("<mj-text>Salut {{ first_name }}</mj-text>")
    assert changed.version != source.version
    cache.get(changed)
    assert cache.compiles == 2


def test_plain_text_is_derived_without_the_preheader(make_source: Make) -> None:
    source = make_source(
        "<mj-text><p>Premier paragraphe.</p><p>Second.</p></mj-text>",
        front='preheader: "Aperçu caché"\n',
    )
    raw = source.mjml.replace("</mj-head>", "<mj-preview>{{ preheader }}</mj-preview></mj-head>")
    compiled = compile_template(
        make_source("", raw=f"---\nsubject: 'x'\npreheader: 'Aperçu caché'\n---\n{raw}")
    )
    email = compiled.render({}, **RENDER)
    assert "Aperçu caché" in email.html
    assert email.preheader == "Aperçu caché"
    assert email.text == "Premier paragraphe.\n\nSecond.\n"


def test_a_missing_value_prints_as_nothing(make_source: Make) -> None:
    compiled = compile_template(make_source("<mj-text>Bonjour {{ first_name }}.</mj-text>"))
    email = compiled.render({"first_name": None}, **RENDER)
    assert "Bonjour ." in email.text
    assert "None" not in email.html + email.text + email.subject


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("<script>alert('x')</script>", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        ('a "quoted" & <b>bold</b>', "a &#34;quoted&#34; &amp; &lt;b&gt;bold&lt;/b&gt;"),
        ("{{ 7*7 }}", "{{ 7*7 }}"),
        (42, "42"),
        (Markup("<i>ok</i>"), "<i>ok</i>"),
    ],
)
def test_html_output_is_escaped_by_markupsafe(value: object, shown: str) -> None:
    # Given an HTML template, when it renders a hostile or a safe value
    html = sandbox.HTML.from_string('<p title="{{ value }}">{{ value }}</p>').render(value=value)
    # Then markupsafe's escaping shows it as typed, and Markup passes through
    assert html == f'<p title="{shown}">{shown}</p>'


def test_a_donation_link_carries_the_amount_the_template_gives(make_source: Make) -> None:
    # Given a template whose buttons link to the donation page with an amount
    body = (
        '<mj-button href="{{ donation_url(30) }}">30</mj-button>\n'
        "<mj-button href=\"{{ donation_url(12.5, 'monthly') }}\">12,50 par mois</mj-button>\n"
        '<mj-button href="https://example.org/">Site</mj-button>'
    )
    compiled = compile_template(make_source(body))
    # Then each is a tracked link stored as the donation page, whatever it is configured to
    assert compiled.links == (DONATION_LINK, DONATION_LINK, "https://example.org/")
    # And rendered, each token carries the message, the link, the amount and the frequency
    email = compiled.render({"first_name": "A"}, **RENDER)
    found = re.findall(rf'href="{BASE_URL}/c/([\w-]+)"', email.html)
    assert [tokens.read_donation_token(SECRET, t) for t in found[:2]] == [
        (42, 0, 3000, "one-off"),
        (42, 1, 1250, "monthly"),
    ]
    assert tokens.read_click_token(SECRET, found[2]) == (42, 2)
    assert re.findall(rf"{BASE_URL}/c/([\w-]+)", email.text) == found
    # And a skeleton render (SendGrid) gives the same email
    skeleton = compiled.render_skeleton({"first_name": "A"}, **RENDER)
    html = skeleton.html
    for tag, value in skeleton.substitutions.items():
        html = html.replace(tag, value)
    assert html == email.html


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<mj-text>{{ donation_url(30) }}</mj-text>", "makes a link"),
        ('<mj-button href="https://x.org/?{{ donation_url(30) }}">x</mj-button>', "dynamic link"),
        ("<mj-button href=\"{{ donation_url(30, 'yearly') }}\">x</mj-button>", "'yearly'"),
        ('<mj-button href="{{ donation_url() }}">x</mj-button>', "takes an amount"),
        ('<mj-button href="{{ donation_url(1, 2, 3) }}">x</mj-button>', "takes an amount"),
        ('<mj-button href="{{ donation_url(1, currency=2) }}">x</mj-button>', "unexpected"),
    ],
)
def test_a_donation_link_is_a_whole_href_with_an_amount(
    make_source: Make, body: str, message: str
) -> None:
    with pytest.raises(Invalid) as exc:
        compile_template(make_source(body))
    assert any(p.startswith("t.mjml:") and message in p for p in problems_of(exc))


def test_a_donation_amount_that_is_not_one_fails_the_render(make_source: Make) -> None:
    compiled = compile_template(
        make_source('<mj-button href="{{ donation_url(first_name) }}">x</mj-button>')
    )
    with pytest.raises(TemplateError, match="not an amount"):
        compiled.render({"first_name": "A"}, **RENDER)
    with pytest.raises(TemplateError, match="positive amount"):
        compiled.render({"first_name": "0"}, **RENDER)


def test_a_remembered_subject_is_only_reused_for_the_same_plain_values(make_source: Make) -> None:
    # Given a subject that reads a first name and an amount, rendered for many recipients
    compiled = compile_template(
        make_source("<mj-text>x</mj-text>", subject="{{ first_name }}, {{ last_gift }} € ?")
    )
    assert compiled.render({"first_name": "Anne", "last_gift": 20}, **RENDER).subject == (
        "Anne, 20 € ?"
    )
    # When a later recipient's values compare equal but print differently
    later = compiled.render({"first_name": "Anne", "last_gift": Decimal("20.00")}, **RENDER)
    # Then the subject shows their own values, not the remembered line
    assert later.subject == "Anne, 20.00 € ?"
    assert compiled.render({"first_name": "Anne", "last_gift": True}, **RENDER).subject == (
        "Anne, True € ?"
    )
    # And a recipient missing a variable the subject reads is still an error
    with pytest.raises(UndefinedError):
        compiled.render({"first_name": "Anne"}, **RENDER)
