from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.send import factoring
from engine.send.transport import OutgoingMessage
from tests.fakes.messages import thank_you


def _rendered(message: OutgoingMessage) -> OutgoingMessage:
    subject, html, text = message.rendered()
    return dataclasses.replace(message, subject=subject, html=html, text=text, substitutions={})


def test_rendered_messages_of_one_template_share_one_skeleton() -> None:
    # given 200 thank-yous rendered per recipient
    messages = [_rendered(thank_you(i)) for i in range(200)]
    # when factored
    factored = factoring.factor(messages)
    # then they share one skeleton, each with small substitutions, and render back exactly
    assert len({(m.subject, m.html, m.text) for m in factored}) == 1
    assert all(m.substitutions for m in factored)
    assert all(len(m.substitutions) <= 10 for m in factored)
    for before, after in zip(messages, factored, strict=True):
        assert after.rendered() == (before.subject, before.html, before.text)
        assert after.message_id == before.message_id
        assert after.headers == before.headers


def test_a_conditional_block_gets_a_skeleton_of_its_own() -> None:
    # given donors whose email has one more paragraph than the others'
    def donor(index: int) -> OutgoingMessage:
        message = _rendered(thank_you(index))
        html = message.html.replace("</body>", f"<p>Merci pour votre don de {index} €</p></body>")
        return dataclasses.replace(message, html=html)

    messages = [_rendered(thank_you(i)) if i % 3 else donor(i) for i in range(60)]
    # when factored  # then two skeletons, and every message renders back exactly
    factored = factoring.factor(messages)
    assert len({m.html for m in factored}) == 2
    for before, after in zip(messages, factored, strict=True):
        assert after.rendered() == (before.subject, before.html, before.text)


def test_messages_that_already_have_substitutions_are_left_alone() -> None:
    messages = [thank_you(1), thank_you(2)]
    assert factoring.factor(messages) == messages


def test_text_containing_the_marker_is_sent_as_it_is() -> None:
    odd = _rendered(thank_you(2, subject="%%mbz %%mbq %%mbx -first_name-"))
    factored = factoring.factor([odd, _rendered(thank_you(3))])
    assert factored[0] == odd


_names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_names, _names), min_size=2, max_size=12))
def test_factoring_never_changes_what_a_recipient_reads(values: list[tuple[str, str]]) -> None:
    # given rendered messages whose first name and link token can be anything at all
    messages = [
        _rendered(
            thank_you(
                i,
                substitutions={
                    "-first_name-": first,
                    "-first_name_html-": first,
                    "-click_url-": f"https://x.example/c/{token}",
                    "-unsubscribe_url-": f"https://x.example/u/{token}",
                },
            )
        )
        for i, (first, token) in enumerate(values)
    ]
    # when factored  # then each renders back byte for byte, within SendGrid's limits
    for before, after in zip(messages, factoring.factor(messages), strict=True):
        assert after.rendered() == (before.subject, before.html, before.text)
        assert (
            sum(len(k.encode()) + len(v.encode()) for k, v in after.substitutions.items()) <= 10_000
        )


def test_messages_that_share_nothing_are_left_as_they_are() -> None:
    # given messages whose structures all differ (each has its own number of lines)
    messages = [_rendered(thank_you(i, text="ligne\n" * i)) for i in range(1, 30)]
    # when factored  # then the rounds stop and every message still reads the same
    factored = factoring.factor(messages)
    for before, after in zip(messages, factored, strict=True):
        assert after.rendered() == (before.subject, before.html, before.text)
