"""Skeleton + substitutions: the same email as the full render, shared content, safe values."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from engine.render import skeletons
from engine.render.compiler import compile_template
from engine.render.library import TemplateLibrary
from engine.render.messages import RenderedEmail
from engine.send.transport import apply_substitutions
from tests.unit.render.conftest import Make, both

SEEDS = ["ask-additional", "ask-first", "ask-first-short", "confirm", "thanked", "update"]
HOSTILE = [
    "Camille",
    "",
    None,
    "<script>alert(1)</script>",
    'Zoé & "Léa" l\'aînée',
    "{{ 7*7 }}",
    "%%mb0%%",
    "\u00a400",  # a tag, as a name
    "a\u00a4b",
    "140\u00a0000",  # equal to another value of the email
    "https://m.example.org/u/x",
    " ",  # equal to a text of the template itself (the space before the name)
]


@pytest.fixture(scope="module")
def library() -> TemplateLibrary:
    return TemplateLibrary(Path(__file__).resolve().parents[3] / "templates" / "email")


def substituted_in_turn(text: str, substitutions: Mapping[str, str], order: list[str]) -> str:
    """Tag by tag, each replaced everywhere before the next: a provider that does not
    substitute in one pass."""
    for tag in order:
        text = text.replace(tag, substitutions[tag])
    return text


def fields(email: RenderedEmail) -> tuple[str, str, str]:
    return email.subject, email.html, email.text


@pytest.mark.parametrize("name", SEEDS)
def test_applying_the_substitutions_gives_the_full_render_byte_for_byte(
    library: TemplateLibrary, name: str
) -> None:
    # Given a seed template and recipients with ordinary, hostile and colliding values
    compiled = library.get(name)
    for message_id, first_name in enumerate(HOSTILE, start=1):
        full, skeleton = both(compiled, message_id, first_name=first_name)
        subs = skeleton.substitutions
        # When the substitutions are applied in one pass, or tag by tag in any order
        orders = [sorted(subs), sorted(subs, reverse=True)]
        for text, expected in zip(fields(skeleton), fields(full), strict=True):
            # Then each gives the full render exactly
            assert apply_substitutions(text, subs) == expected
            for order in orders:
                assert substituted_in_turn(text, subs, order) == expected
        assert (skeleton.headers, skeleton.preheader) == (full.headers, full.preheader)


def test_values_are_escaped_as_the_full_render_escapes_them(library: TemplateLibrary) -> None:
    full, skeleton = both(library.get("thanked"), 1, first_name="<b>Zoé</b> & co")
    # The HTML carries the escaped name as a value; the text and subject carry it as typed
    assert "&lt;b&gt;Zoé&lt;/b&gt; &amp; co" in skeleton.substitutions.values()
    assert "<b>Zoé</b> & co" in skeleton.substitutions.values()
    assert "Zoé" not in skeleton.html + skeleton.text
    assert "&lt;b&gt;Zoé&lt;/b&gt; &amp; co" in full.html
    # as plain strings: a Markup would escape whatever a transport joined to it
    assert {type(value) for value in skeleton.substitutions.values()} == {str}


def test_recipients_of_one_shape_share_the_skeleton_objects(library: TemplateLibrary) -> None:
    compiled = library.get("update")
    emails = [both(compiled, i, first_name=f"Prénom{i}")[1] for i in range(1, 30)]
    # One skeleton per field for all of them (the transport groups by identity first)
    assert len({id(e.html) for e in emails}) == 1
    assert len({id(e.text) for e in emails}) == 1
    assert {e.subject for e in emails} == {skeletons.TAGS[0]}
    # And only the recipient's values ride along: name, count, links, subject, unsubscribe
    assert all(len(e.substitutions) <= 10 for e in emails)
    assert len({e.substitutions[skeletons.TAGS[0]] for e in emails}) == 29


def test_control_flow_gives_one_skeleton_per_shape(library: TemplateLibrary) -> None:
    compiled = library.get("update")
    with_name = both(compiled, 1, first_name="Ana")[1]
    without = both(compiled, 2, first_name="")[1]
    again = both(compiled, 3, first_name="Bob")[1]
    assert with_name.html is again.html
    assert with_name.html != without.html


@pytest.mark.parametrize("first_name", ["a\u00a4b", "\u00a400"])
def test_a_value_holding_the_tag_mark_gets_a_full_render(
    library: TemplateLibrary, first_name: str
) -> None:
    full, skeleton = both(library.get("thanked"), 1, first_name=first_name)
    assert skeleton.substitutions == {}
    assert fields(skeleton) == fields(full)


def test_a_template_whose_text_holds_the_mark_is_rendered_in_full(make_source: Make) -> None:
    compiled = compile_template(make_source("<mj-text>Prix : 3 \u00a4 {{ first_name }}</mj-text>"))
    full, skeleton = both(compiled, 1, first_name="Ana")
    assert skeleton.substitutions == {}
    assert fields(skeleton) == fields(full)


def test_an_empty_subject_stays_empty_for_the_transport_to_refuse(make_source: Make) -> None:
    compiled = compile_template(make_source("<mj-text>x</mj-text>", subject="{{ first_name }}"))
    _, skeleton = both(compiled, 1, first_name="")
    assert skeleton.subject == ""


def test_loops_and_filters_render_exactly(make_source: Make) -> None:
    # Given a template whose shape depends on the recipient (a loop over their ask ladder)
    body = (
        "<mj-text>{% for amount in ask_ladder(last_gift) %}"
        "<b>{{ amount | money(cents=False) }}</b> {% endfor %}"
        "{{ signature_count | number }} / {{ first_name }}</mj-text>"
    )
    compiled = compile_template(make_source(body))
    for message_id, gift in zip(
        range(1, 6), [None, Decimal("5"), Decimal("50"), Decimal("500"), None], strict=True
    ):
        full, skeleton = both(compiled, message_id, last_gift=gift, first_name="Ana")
        assert skeleton.substitutions
        for text, expected in zip(fields(skeleton), fields(full), strict=True):
            assert apply_substitutions(text, skeleton.substitutions) == expected


def test_tags_are_prefix_free_and_carry_the_mark_once() -> None:
    tags = skeletons.TAGS
    assert len(set(tags)) == len(tags) == 36 * 36
    assert all(t.count(skeletons.MARK) == 1 and t.startswith(skeletons.MARK) for t in tags)
    assert len({len(t) for t in tags}) == 1  # the same length: none is a prefix of another
    assert not any(a != b and b.startswith(a) for a, b in itertools.product(tags[:50], tags))
