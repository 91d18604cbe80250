"""The fidelity statistics against values computed by hand (no scipy in the lab's stack)."""

import math

import pytest

from archlab.measure import scores
from archlab.results import stats


def test_ranks_average_ties():
    assert stats.ranks([10, 30, 20, 30]) == [1.0, 3.5, 2.0, 3.5]


def test_kendall_tau_b_without_ties():
    # pairs of x=[1,2,3,4], y=[1,3,2,4]: only (2,3) is discordant -> (5 - 1) / 6
    assert stats.kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert stats.kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_kendall_tau_b_with_ties():
    # x=[1,2,2,3], y=[1,2,3,3]: 6 pairs; (1,2) tied in x, (2,3) tied in y; the other 4 are
    # concordant. tau-b = 4 / sqrt((6-1)(6-1)) = 0.8 (tau-a would say 4/6).
    assert stats.kendall_tau_b([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)


def test_spearman_rho_by_hand():
    # ranks x = 1..5, y = [2,1,4,3,5]: d^2 = 1+1+1+1+0 = 4, rho = 1 - 6*4/(5*24) = 0.8
    assert stats.spearman_rho([1, 2, 3, 4, 5], [20, 10, 40, 30, 50]) == pytest.approx(0.8)
    # with ties: x ranks [1, 2.5, 2.5, 4], y ranks [1, 2, 3, 4]: Pearson of the ranks
    # = sum((rx - 2.5)(ry - 2.5)) / sqrt(sum (rx-2.5)^2 * sum (ry-2.5)^2) = 4.5 / sqrt(4.5 * 5)
    assert stats.spearman_rho([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_constant_vectors_have_no_correlation():
    assert math.isnan(stats.spearman_rho([1, 1, 1], [1, 2, 3]))
    assert math.isnan(stats.kendall_tau_b([0.5, 0.5, 0.5], [1, 2, 3]))
    with pytest.raises(ValueError):
        stats.kendall_tau_b([1, 2], [1, 2, 3])


def test_mean_over_seed_pairs():
    # seeds 0/1 agree (tau 1), 0/2 and 1/2 are reversed in one pair of three (tau 1/3)
    by_seed = [[1, 2, 3], [1, 2, 3], [2, 1, 3]]
    assert stats.mean_over_seed_pairs(by_seed, stats.kendall_tau_b) == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    assert math.isnan(stats.mean_over_seed_pairs([[1, 2, 3]], stats.kendall_tau_b))


def test_interval_uses_the_t_distribution():
    iv = stats.interval([0.80, 0.84, 0.82])
    # mean 0.82, std sqrt((0.0004 + 0.0004 + 0) / 2) = 0.02, half = t(0.975, 2) * 0.02 / sqrt(3)
    assert iv.mean == pytest.approx(0.82)
    assert iv.std == pytest.approx(0.02)
    assert iv.half == pytest.approx(4.303 * 0.02 / math.sqrt(3))
    assert (iv.low, iv.high) == pytest.approx((0.82 - iv.half, 0.82 + iv.half))
    one = stats.interval([0.5])
    assert one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.half)


def test_t_quantiles():
    assert stats.t975(1) == pytest.approx(12.706)
    assert stats.t975(30) == pytest.approx(2.042)
    assert stats.t975(40) == pytest.approx(2.021, abs=1e-3)  # table value
    assert stats.t975(120) == pytest.approx(1.980, abs=1e-3)


def test_top_quarter_overlap():
    x = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]  # top 2 (ceil(8/4)): genomes 0, 1
    y = [0.9, 0.1, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]  # top 2: genomes 0, 2
    assert stats.top_overlap(x, y) == 0.5
    assert stats.top_overlap(x, x) == 1.0
    assert stats.top_overlap([1, 2, 3], [3, 2, 1]) == 0.0  # k = 1


def test_bimodal_detection():
    chance, n = 1 / 6, 300
    band = stats.chance_band(chance, n)
    assert band == pytest.approx(2 * math.sqrt(chance * (1 - chance) / n))  # 0.043
    # the P3D-C at the search budget: two seeds at chance, two well above
    assert stats.is_bimodal([0.21, 0.42, 0.18, 0.58], chance, n)
    assert not stats.is_bimodal([0.80, 0.82, 0.84], chance, n)  # learned every time
    assert not stats.is_bimodal([0.15, 0.17, 0.19], chance, n)  # never learned (2D): not bimodal
    # 0.30 is above the chance band, so not "at chance": noisy, not two outcomes
    assert not stats.is_bimodal([0.30, 0.60], chance, n)
    assert stats.is_bimodal([chance + band, chance + 0.15], chance, n)  # both edges included


def test_training_speed_score():
    assert scores.training_speed([1.8, 1.5, 1.0, 0.7], last=2) == pytest.approx(1.7)
    assert scores.training_speed([1.8], last=3) == pytest.approx(1.8)
    assert scores.rank_value("training_speed", 1.7) == -1.7  # lower loss ranks higher
    with pytest.raises(ValueError):
        scores.training_speed([], last=1)


def test_welch_difference_against_hand_computed_values():
    # a = 1,2,3: mean 2, var 1; b = 4..7: mean 5.5, var 5/3. se^2 = 1/3 + 5/12 = 0.75;
    # Welch df = 0.75^2 / ((1/3)^2/2 + (5/12)^2/3) = 4.96 -> 4 -> t = 2.776; half = 2.776 * 0.866
    d = stats.difference([1, 2, 3], [4, 5, 6, 7])
    assert (d.mean, d.std, d.half) == pytest.approx((-3.5, math.sqrt(0.75), 2.776 * math.sqrt(0.75)))
    assert d.high < 0  # a is below b at 95%
    # equal sizes and spreads: df = 2(n-1) = 4
    e = stats.difference([0.9, 0.95, 1.0], [0.8, 0.85, 0.9])
    assert e.mean == pytest.approx(0.1) and e.half == pytest.approx(2.776 * math.sqrt(2 * 0.0025 / 3))
    assert math.isnan(stats.difference([0.5], [0.4, 0.6]).half)  # one seed: undecided, not 0
    # what each interval allows: d's is [-5.9, -1.1]; e's 0.1 ± 0.113 holds 0; the same spreads
    # 0.4 apart give 0.4 ± 0.113, above
    assert (stats.verdict(d), stats.verdict(e)) == ("below", "not distinguishable")
    assert stats.verdict(stats.difference([0.9, 0.95, 1.0], [0.5, 0.55, 0.6])) == "above"
    assert (
        stats.verdict(stats.difference([0.5], [0.4, 0.6]), undecided="undecided (one seed)") == "undecided (one seed)"
    )
    assert math.isnan(stats.difference([0.5, 0.5], [0.4, 0.4]).half)


def test_rho_ceiling_is_the_expected_rho_against_a_redrawn_val_set():
    """stats.rho_ceiling against the exact expectation, enumerated: 3 genomes at 0.25 / 0.5 /
    0.75 on a 1-clip val set draw each accuracy as 0 or 1; the 6 non-constant outcomes
    (constant ones have no rho and are left out, as the function leaves out nan) weighted by
    their probabilities."""
    import itertools

    p = [0.25, 0.5, 0.75]
    num = den = 0.0
    for d in itertools.product((0, 1), repeat=3):
        if len(set(d)) < 2:
            continue
        w = math.prod(pi if di else 1 - pi for pi, di in zip(p, d))
        num += w * stats.spearman_rho(p, list(d))
        den += w
    exact = num / den
    # By hand: (0,0,1) and (0,1,1) have weight 0.28125 each and rho sqrt(3)/2; (0,1,0) and
    # (1,0,1) 0.09375 and rho 0; (1,0,0) and (1,1,0) 0.03125 and rho -sqrt(3)/2; the weights
    # add up to 0.8125: (0.5625 - 0.0625) * sqrt(3)/2 / 0.8125 = 0.53294.
    assert exact == pytest.approx(0.5 * math.sqrt(3) / 2 / 0.8125) == pytest.approx(0.53294, abs=1e-5)
    assert stats.rho_ceiling(p, 1, draws=40_000) == pytest.approx(exact, abs=0.01)


def test_rho_ceiling_follows_the_val_set_size_and_the_spread():
    far = [0.2, 0.4, 0.6, 0.8]  # 0.2 apart: 600 clips (se <= 0.02) never swap them
    assert stats.rho_ceiling(far, 600) == pytest.approx(1.0, abs=1e-3)
    close = [0.90, 0.91, 0.92, 0.93]  # 0.01 apart, se 0.012 at 600 clips: often swapped
    c600, c6000 = stats.rho_ceiling(close, 600), stats.rho_ceiling(close, 6000)
    assert c600 < 0.75 and c600 < c6000 < 1.0
    assert stats.rho_ceiling(close, 600) == c600  # seeded: the same figure every time
    assert math.isnan(stats.rho_ceiling([0.5, 0.5], 600)) and math.isnan(stats.rho_ceiling([0.5], 600))
    with pytest.raises(ValueError):
        stats.rho_ceiling(far, 0)


def test_separated_pairs_keeps_what_the_val_set_alone_separates_with_one_reference_seed():
    """By hand, n_val 100: binomial variances 0.5*0.5/100 = 0.0025, 0.6*0.4/100 = 0.0024,
    0.9*0.1/100 = 0.0009. Pair (0.5, 0.6): 0.1 <= 2 sqrt(0.0049) = 0.140, not separated;
    (0.5, 0.9): 0.4 > 2 sqrt(0.0034) = 0.117; (0.6, 0.9): 0.3 > 2 sqrt(0.0033) = 0.115."""
    ref = [[0.5], [0.6], [0.9]]
    sp = stats.separated_pairs([0.5, 0.6, 0.7], ref, 100)
    assert (sp.pairs, sp.of, sp.agree, sp.concordance, sp.seed_noise) == (2, 3, 2.0, 1.0, False)
    # the unseparated pair's order does not count; a separated pair's reversal does
    assert stats.separated_pairs([0.6, 0.5, 0.7], ref, 100).agree == 2.0
    assert stats.separated_pairs([0.5, 0.8, 0.7], ref, 100).concordance == 0.5
    assert stats.separated_pairs([0.5, 0.7, 0.7], ref, 100).agree == 1.5  # a proxy tie counts half
    assert stats.separated_pairs([0.5, 0.6, 0.7], ref, 100, z=6.0).pairs == 1  # 0.4 > 6 x 0.0583; 0.3 <= 6 x 0.0574
    nothing = stats.separated_pairs([0.5, 0.6], [[0.5], [0.5]], 100)
    assert nothing.pairs == 0 and math.isnan(nothing.concordance)
    with pytest.raises(ValueError):
        stats.separated_pairs([0.5, 0.6], [[0.5]], 100)
    with pytest.raises(ValueError):
        stats.separated_pairs([0.5, 0.6], [[0.5], [0.6]], 0)


def test_separated_pairs_counts_the_reference_seeds_spread_when_measured():
    """Two genomes whose reference means are 0.60 and 0.72 on 1,000 val clips: the val set alone
    separates them (0.12 > 2 sqrt(0.6*0.4/1000 + 0.72*0.28/1000) = 0.042). Seeds that agree
    (pooled variance 0) keep the pair; seeds 0.2 apart (pooled variance (0.02 + 0.02) / 2 = 0.02,
    the mean of 2 seeds adding 0.01 each) do not: 0.12 <= 2 sqrt(0.0204416) = 0.286."""
    assert stats.pooled_seed_variance([[0.5, 0.7], [0.62, 0.82], [0.9]]) == pytest.approx(0.02)
    assert math.isnan(stats.pooled_seed_variance([[0.5], [0.6]]))
    steady = stats.separated_pairs([0.1, 0.2], [[0.6, 0.6], [0.72, 0.72]], 1000)
    assert (steady.pairs, steady.agree, steady.seed_noise) == (1, 1.0, True)
    spread = stats.separated_pairs([0.1, 0.2], [[0.5, 0.7], [0.62, 0.82]], 1000)
    assert (spread.pairs, spread.seed_noise) == (0, True)
