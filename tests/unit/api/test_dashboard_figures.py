"""The dashboard writes its figures as its English pages read (the emails and the public
pages, in French, write theirs the French way: engine/render/french.py)."""

from __future__ import annotations

from engine.api.dashboard import pages


def test_figures_are_written_the_english_way_and_a_missing_one_is_a_dash() -> None:
    # Given a count, an amount in cents and a rate, as the journey page shows them
    shown = pages.env.from_string(
        "{{ 140719 | number }} · {{ 224550 | euros }} · {{ 0.0438 | percent }} · "
        "{{ none | euros }} · {{ none | percent }}"
    ).render()

    # Then they read as an English reader expects, with groups, and a dash for none
    assert shown == "140,719 · €2,245.50 · 4.4% · – · –"


def test_a_p_value_is_written_as_the_verdict_writes_it() -> None:
    shown = pages.env.from_string(
        "{{ 0.0539 | p_value }} · {{ 0.0002 | p_value }} · {{ none | p_value }}"
    ).render()
    assert shown == "0.054 · &lt; 0.001 · –"  # HTML: "< 0.001"
