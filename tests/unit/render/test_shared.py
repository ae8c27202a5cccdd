"""Recipients with the same values share one render: each still gets its own email.

Given recipients whose template values are the same, when their emails are rendered as
skeletons (the SendGrid path), then the render is made once, and each email, its
substitutions applied, is byte for byte its own full render: its own signed links, never
another recipient's. A template that uses a link other than by printing it is never shared.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.render import shared
from engine.render.compiler import compile_template
from engine.render.library import TemplateLibrary
from engine.render.messages import RenderedEmail
from engine.send.transport import apply_substitutions
from tests.unit.render.conftest import Make, both

SEEDS = ["ask-additional", "ask-first", "ask-first-short", "confirm", "thanked", "update"]
LIBRARY = TemplateLibrary(Path(__file__).resolve().parents[3] / "templates" / "email")


def assert_is_its_own(full: RenderedEmail, skeleton: RenderedEmail) -> None:
    for text, expected in (
        (skeleton.subject, full.subject),
        (skeleton.html, full.html),
        (skeleton.text, full.text),
    ):
        assert apply_substitutions(text, skeleton.substitutions) == expected
    assert (skeleton.headers, skeleton.preheader) == (full.headers, full.preheader)


@pytest.mark.parametrize("name", SEEDS)
def test_recipients_with_the_same_values_each_get_their_own_links(name: str) -> None:
    # Given a seed template and three recipients with the same values
    compiled = compile_template(LIBRARY.get(name).source)  # a fresh cache of renders
    emails = [both(compiled, message_id, first_name="Camille") for message_id in (7, 8, 9)]
    # Then the first made the shared render and the others used it
    assert compiled.shared_names is not None
    # And each email is its own full render, links included
    for full, skeleton in emails:
        assert_is_its_own(full, skeleton)
    assert len({full.html for full, _ in emails}) == 3  # their links differ
    assert emails[1][1].html is emails[2][1].html  # one skeleton, shared


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(SEEDS),
    first_name=st.one_of(st.none(), st.text(max_size=12)),
    last_gift=st.one_of(
        st.none(),
        st.decimals(min_value=1, max_value=5000, places=2, allow_nan=False),
        st.integers(min_value=1, max_value=5000),
    ),
    monthly=st.booleans(),
    message_ids=st.lists(st.integers(min_value=1, max_value=2**62), min_size=2, max_size=3),
)
def test_any_recipients_sharing_a_render_get_exactly_their_own_email(
    name: str,
    first_name: str | None,
    last_gift: Decimal | int | None,
    monthly: bool,
    message_ids: list[int],
) -> None:
    compiled = LIBRARY.get(name)
    if name == "ask-additional" and last_gift is None:
        last_gift = 20  # a donor's ask: `validate` keeps non-donors away from it
    for message_id in message_ids:
        assert_is_its_own(
            *both(
                compiled,
                message_id,
                first_name=first_name,
                last_gift=last_gift,
                last_gift_monthly=monthly,
            )
        )


def test_equal_amounts_that_print_differently_do_not_share_a_render() -> None:
    compiled = compile_template(LIBRARY.get("ask-additional").source)
    for message_id, amount in enumerate((20, Decimal("20.00"), Decimal("20")), start=1):
        assert_is_its_own(*both(compiled, message_id, last_gift=amount))


@pytest.mark.parametrize(
    "body",
    [
        "<mj-text>{{ unsubscribe_url | length }}</mj-text>",
        "<mj-text>{% if rights_url.startswith('https') %}sûr{% endif %}</mj-text>",
        "<mj-text>{% set u = unsubscribe_url %}{{ u }}</mj-text>",
    ],
)
def test_a_template_using_a_link_other_than_printing_it_is_not_shared(
    make_source: Make, body: str
) -> None:
    # Given a template that measures, tests or stores a link
    compiled = compile_template(make_source(body))
    # Then its renders are not shared, and each email is still its own full render
    assert compiled.shared_names is None
    for message_id in (1, 2):
        assert_is_its_own(*both(compiled, message_id, first_name="Camille"))


def test_a_subject_printing_a_link_is_not_shared(make_source: Make) -> None:
    compiled = compile_template(
        make_source("<mj-text>x</mj-text>", subject="Bonjour {{ unsubscribe_url }}")
    )
    assert compiled.shared_names is None


def test_a_base_url_that_html_escapes_renders_each_email_itself() -> None:
    compiled = compile_template(LIBRARY.get("thanked").source)
    for message_id in (1, 2):
        assert_is_its_own(
            *both(compiled, message_id, base_url="https://m.example.org/?a=1&b=2", first_name="Léa")
        )


def test_a_render_is_made_for_values_seen_twice_and_kept() -> None:
    # Given the renders of one template, and a maker that counts its calls
    renders = shared.SharedRenders()
    made: list[int] = []

    def make() -> shared.SharedRender | None:
        made.append(1)
        return None

    # When one key turns up three times and another once
    answers = [renders.get(("Camille",), make) for _ in range(3)]
    renders.get(("Zoé",), make)

    # Then the first sighting gets its own render, the second makes the shared one, the
    # third finds it; a key seen once never costs a shared render
    assert answers == [None, None, None]
    assert made == [1]
