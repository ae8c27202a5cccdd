"""A/B verdicts against known values: the z-test, the sample size, the sentence."""

from __future__ import annotations

import pytest

from engine.stats.ab import Arm, about, compare, normal_cdf, p_text, sends_needed, z_test


def test_the_normal_distribution_gives_the_textbook_quantiles() -> None:
    assert normal_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-12)
    assert normal_cdf(0.0) == 0.5
    assert normal_cdf(-1.0) == pytest.approx(0.15865525393145707, abs=1e-12)


def test_a_two_proportion_z_test_with_known_values() -> None:
    # Given 10 % of 1,000 against 13 % of 1,000 (pooled 11.5 %)
    z, p = z_test(Arm("A", 1000, 100), Arm("B", 1000, 130))
    # Then z = 0.03 / sqrt(0.115 * 0.885 * 2 / 1000) and p is its two-sided tail
    assert z == pytest.approx(2.10274, abs=1e-5)
    assert p == pytest.approx(0.03549, abs=1e-5)


def test_no_spread_means_no_evidence() -> None:
    assert z_test(Arm("A", 100, 0), Arm("B", 100, 0)) == (0.0, 1.0)


def test_the_sample_size_that_detects_ten_against_twelve_percent() -> None:
    # The figure every sample-size table gives for 10 % -> 12 %, 5 % two-sided, 80 % power
    assert sends_needed(0.10, 0.12) == 3841
    assert sends_needed(0.12, 0.10) == 3841
    assert sends_needed(0.05, 0.05) is None


def test_a_difference_not_significant_yet_says_how_many_more_sends_it_needs() -> None:
    # Given 0.8 % against 1.2 % over 2,000 emails each
    verdict = compare(Arm("A", 2000, 16), Arm("B", 2000, 24), "gift rate")
    # Then B raises the rate by 0.4 points, not significantly, and about 7,700 more
    # sends per variant would tell (9,712 needed in all, 2,000 sent)
    assert verdict.points == pytest.approx(0.4)
    assert not verdict.significant
    assert sends_needed(0.008, 0.012) == 9712
    assert verdict.more_sends_per_variant == 7712
    assert verdict.sentence == (
        "B raises the gift rate by 0.4 points (1.2% against 0.8% for A), "
        "not significant yet (p = 0.20): about 7,700 more sends per variant needed."
    )


def test_a_significant_difference_says_so() -> None:
    verdict = compare(Arm("A", 20000, 160), Arm("B", 20000, 120), "click rate")
    assert verdict.significant
    assert verdict.p_value == pytest.approx(0.0164, abs=1e-4)
    assert verdict.sentence == (
        "B lowers the click rate by 0.2 points (0.6% against 0.8% for A): significant (p = 0.016)."
    )
    far = compare(Arm("A", 20000, 160), Arm("B", 20000, 60), "click rate")
    assert far.sentence.endswith("significant (p < 0.001).")


def test_no_verdict_before_both_variants_have_sent() -> None:
    verdict = compare(Arm("A", 0, 0), Arm("B", 30, 1), "gift rate")
    assert verdict.p_value is None
    assert verdict.sentence == "A has sent no email yet: nothing to compare."
    same = compare(Arm("A", 500, 5), Arm("B", 500, 5), "gift rate")
    assert (
        same.sentence == "B and A have the same gift rate so far (1.0%): no difference to test yet."
    )


def test_counts_are_rounded_to_two_figures() -> None:
    assert [about(n) for n in (7, 99, 3241, 12_345, 1_060_000)] == [
        "7",
        "99",
        "3,200",
        "12,000",
        "1,100,000",
    ]


@pytest.mark.parametrize(
    ("control", "challenger", "exact"),
    [
        ((3, 0), (3, 3), 0.1),  # the z-test says p = 0.014
        ((200, 0), (200, 5), 0.0609),  # 0.024
        ((500, 1), (500, 7), 0.0692),  # 0.033
    ],
)
def test_few_gifts_are_judged_by_fishers_exact_test_not_a_normal_approximation(
    control: tuple[int, int], challenger: tuple[int, int], exact: float
) -> None:
    # Given arms where a cell expects fewer than five gifts
    verdict = compare(Arm("A", *control), Arm("B", *challenger), "gift rate")
    # Then the p-value is Fisher's (R's fisher.test gives these), and B wins nothing yet
    assert verdict.p_value == pytest.approx(exact, abs=5e-4)
    assert verdict.z is None
    assert not verdict.significant
    assert ": significant" not in verdict.sentence


def test_a_p_value_is_never_written_on_the_threshold_it_is_not_on() -> None:
    assert [p_text(p) for p in (0.0539, 0.0496, 0.0504, 0.0449, 0.5, 0.0004)] == [
        "p = 0.054",
        "p = 0.0496",
        "p = 0.0504",
        "p = 0.045",
        "p = 0.50",
        "p < 0.001",
    ]


def test_a_gap_under_a_tenth_of_a_point_is_written_to_the_hundredth() -> None:
    verdict = compare(Arm("A", 10_000, 100), Arm("B", 10_000, 104), "gift rate")
    assert "by 0.04 points (1.04% against 1.00% for A)" in verdict.sentence


def test_one_more_send_is_singular_and_more_successes_than_sends_do_not_crash() -> None:
    assert "about 1 more send per variant" in compare(Arm("A", 1, 0), Arm("B", 1, 1), "x").sentence
    # Clicks on an email not settled as sent yet can outnumber the emails sent
    verdict = compare(Arm("A", 6, 5), Arm("B", 1, 5), "click rate")
    assert verdict.challenger.successes == 1
    assert verdict.p_value is not None
