"""Statistics against scipy and against small cases worked by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from lossbench import stats


def test_holm_hand_worked():
    # sorted p: 0.01, 0.03, 0.04 with m = 3 → 0.03, 0.06, max(0.06, 0.04) = 0.06
    out = stats.holm([0.01, 0.04, 0.03])
    np.testing.assert_allclose(out, [0.03, 0.06, 0.06])


def test_holm_caps_at_one_and_keeps_nan():
    out = stats.holm([0.5, np.nan, 0.9])
    assert out[0] == 1.0 and np.isnan(out[1]) and out[2] == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_is_monotone_and_dominates_raw(ps):
    p = np.array(ps)
    adj = stats.holm(p)
    assert np.all(adj >= p - 1e-12) and np.all(adj <= 1)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-12)


def test_wilcoxon_matches_scipy_and_hand_case():
    d = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # all five differences positive: exact two-sided p = 2 / 2^5
    assert stats.wilcoxon_signed_rank(d) == pytest.approx(0.0625)
    assert stats.wilcoxon_signed_rank(d, alternative="greater") == pytest.approx(1 / 32)
    rng = np.random.default_rng(1)
    x = rng.normal(0.2, 1, 15)
    assert stats.wilcoxon_signed_rank(x) == pytest.approx(sps.wilcoxon(x).pvalue)


def test_wilcoxon_degenerate_inputs():
    assert stats.wilcoxon_signed_rank(np.zeros(6)) == 1.0
    assert np.isnan(stats.wilcoxon_signed_rank(np.array([])))


def test_wilcoxon_is_exact_at_small_n_with_ties_and_zeros():
    # n = 3, all positive, two tied: the exact two-sided p is 2/8 (the floor), not the normal approximation's 0.18
    assert stats.wilcoxon_signed_rank(np.array([0.01, 0.01, 0.02])) == pytest.approx(0.25)
    # a zero is dropped (Wilcoxon's convention): three positive values remain
    assert stats.wilcoxon_signed_rank(np.array([0.0, 0.01, 0.02, 0.03])) == pytest.approx(0.25)
    # hand case with a tie: |d| = 1, 1, 2, 3 → ranks 1.5, 1.5, 3, 4; T+ = 8.5 (the −1 has rank 1.5).
    # Of the 16 sign patterns, T+ ≥ 8.5 in 3 (8.5, 8.5, 10), T+ ≤ 8.5 in 15: two-sided p = 2 · 3/16
    assert stats.wilcoxon_signed_rank(np.array([1.0, -1.0, 2.0, 3.0])) == pytest.approx(6 / 16)


@pytest.mark.slow
def test_wilcoxon_matches_scipys_exact_permutation_test():
    rng = np.random.default_rng(9)
    for n in (3, 6, 9):
        d = np.round(rng.normal(0.01, 0.02, (20, n)), 2)  # ties and zeros
        d = d[np.any(d != 0, axis=1)]
        for alternative in ("two-sided", "less", "greater"):
            ref = [sps.wilcoxon(r, alternative=alternative, method=sps.PermutationMethod(n_resamples=2**n)).pvalue
                   for r in d]
            np.testing.assert_allclose(stats.batch_wilcoxon(d, alternative), ref)


def test_cliffs_delta_hand_case_and_mannwhitney_identity():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])
    # pairs: (1,2)<, (1,4)<, (2,2)=, (2,4)<, (3,2)>, (3,4)< → (1 − 4) / 6
    assert stats.cliffs_delta(a, b) == pytest.approx(-0.5)
    assert stats.cliffs_delta(a, b, higher_is_better=False) == pytest.approx(0.5)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=9), rng.normal(0.3, size=11)
    u = sps.mannwhitneyu(x, y).statistic
    assert stats.cliffs_delta(x, y) == pytest.approx(2 * u / (len(x) * len(y)) - 1)


def test_win_probability_is_a_beta_posterior_with_ties_half():
    # wins, tie, loss, win: 2.5 wins of 4 → Beta(1 + 2.5, 1 + 1.5)
    mean, lo, hi = stats.win_probability(np.array([[1.0, 0.0, -2.0, 3.0]]))
    assert mean[0] == pytest.approx(3.5 / 6)
    assert lo[0] == pytest.approx(sps.beta.ppf(0.025, 3.5, 2.5)) and hi[0] == pytest.approx(sps.beta.ppf(0.975, 3.5, 2.5))
    # direction: lower is better turns two losses into two wins
    assert stats.win_probability(np.array([[-1.0, -2.0]]), higher_is_better=False)[0][0] == pytest.approx(0.75)


def test_win_probability_never_claims_certainty_from_few_seeds():
    for n in (1, 3, 5):
        mean, lo, hi = stats.win_probability(np.ones((1, n)))
        assert mean[0] == pytest.approx((n + 1) / (n + 2)) and hi[0] < 1 and lo[0] == pytest.approx(0.025 ** (1 / (n + 1)))


def test_friedman_ranks_and_iman_davenport_hand_case():
    # three datasets, three losses, identical ordering → ranks 1, 2, 3
    table = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.8, 0.7, 0.6], "c": [0.7, 0.6, 0.5]})
    ranks = stats.average_ranks(table)
    assert list(ranks.index) == ["a", "b", "c"] and list(ranks) == [1.0, 2.0, 3.0]
    res = stats.friedman(table)
    # χ²_F = 12N/(k(k+1)) Σ R_j² − 3N(k+1) = 12·3/12 · 14 − 36 = 6 = N(k−1): perfect agreement
    assert res.chi2 == pytest.approx(6.0)
    assert res.p_chi2 == pytest.approx(sps.friedmanchisquare(*(table[c] for c in table)).pvalue)
    # F's denominator N(k−1) − χ² vanishes: no p from it (0.2.0 printed p = 0, a certainty three datasets cannot
    # give); the exact p is the chance that the two other datasets both repeat the first one's order, 1/6²
    assert res.iman_davenport_f == float("inf") and np.isnan(res.p_iman_davenport)
    assert res.p_exact == pytest.approx(1 / 36)
    assert stats.friedman(table.iloc[:2]).p_exact == pytest.approx(1 / 6)


def test_exact_friedman_p_counts_every_arrangement_as_scipys_statistic_orders_them():
    """Brute force over every arrangement of each dataset's ranks (ties included), ordered by scipy's χ²."""
    import itertools

    table = pd.DataFrame({"a": [0.9, 0.5, 0.7], "b": [0.8, 0.5, 0.6], "c": [0.7, 0.4, 0.8], "d": [0.6, 0.3, 0.5]})
    ranks = table.rank(axis=1).to_numpy()
    observed = sps.friedmanchisquare(*ranks.T).statistic
    perms = [sorted(set(itertools.permutations(row))) for row in ranks[1:]]
    values = [sps.friedmanchisquare(*np.array([ranks[0], *rows]).T).statistic for rows in itertools.product(*perms)]
    expected = np.mean(np.array(values) >= observed - 1e-9)
    res = stats.friedman(table)
    assert res.p_exact == pytest.approx(expected) and 0 < res.p_exact < 1
    assert len(values) == 12 * 24  # the tie in the second row halves its arrangements


def test_friedman_is_asymptotic_only_beyond_the_enumeration_bound():
    rng = np.random.default_rng(5)
    big = pd.DataFrame(rng.normal(size=(8, 3)), columns=list("abc"))  # 6^7 arrangements
    assert stats.friedman(big).p_exact is None
    assert stats.friedman(big.iloc[:7]).p_exact is not None  # 6^6


def test_compare_prints_the_exact_p_and_says_why_f_is_undefined():
    from lossbench.report.tables import omnibus_text

    table = pd.DataFrame({"a": [0.9, 0.8], "b": [0.8, 0.7], "c": [0.7, 0.6]})
    text = omnibus_text(stats.friedman(table), " = ")
    assert "exact p = 0.167" in text and "F undefined: every dataset ranks the losses alike" in text
    assert "inf" not in text.lower() and "∞" not in text


def test_friedman_iman_davenport_formula_against_scipy():
    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.normal(size=(10, 4)), columns=list("abcd"))
    table["a"] += 0.8
    res = stats.friedman(table)
    chi2, p = sps.friedmanchisquare(*(table[c] for c in table))
    n, k = 10, 4
    f = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert res.chi2 == pytest.approx(chi2) and res.p_chi2 == pytest.approx(p)
    assert res.iman_davenport_f == pytest.approx(f)
    assert res.p_iman_davenport == pytest.approx(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))
    assert stats.friedman(table[["a", "b"]]) is None


def test_ranks_lower_is_better_and_ties():
    table = pd.DataFrame({"a": [0.1, 0.2], "b": [0.1, 0.3]})
    ranks = stats.average_ranks(table, higher_is_better=False)
    assert ranks["a"] == pytest.approx(1.25) and ranks["b"] == pytest.approx(1.75)


def test_location_ci_t_below_ten_and_bca_above():
    x = np.array([0.8, 0.82, 0.79, 0.81, 0.83])
    ci = stats.location_ci(x)
    lo, hi = sps.t.interval(0.95, 4, loc=x.mean(), scale=sps.sem(x))
    assert ci.method == "t" and ci.low == pytest.approx(lo) and ci.high == pytest.approx(hi)
    rng = np.random.default_rng(4)
    y = rng.normal(0.8, 0.02, 30)
    ci = stats.location_ci(y)
    ref = sps.bootstrap((y,), np.mean, method="BCa", n_resamples=2000, random_state=0)
    assert ci.method == "bca"
    assert ci.low == pytest.approx(ref.confidence_interval.low) and ci.high == pytest.approx(
        ref.confidence_interval.high
    )


def test_location_ci_is_cut_to_the_limits_and_absent_below_three_values():
    x = np.array([0.97, 0.99, 1.0])
    free = stats.location_ci(x)
    assert free.high > 1  # the t interval itself crosses the bound
    cut = stats.location_ci(x, limits=(0.0, 1.0))
    assert cut.method == "t" and cut.low == pytest.approx(free.low) and cut.high == 1.0
    two = stats.location_ci(np.array([0.1, 0.2333]), limits=(0.0, 1.0))
    assert two.method == "none" and np.isnan(two.low) and two.estimate == pytest.approx(0.16665)


def test_degenerate_bca_falls_back_to_percentile_and_constant_is_exact(monkeypatch):
    real = sps.bootstrap

    def bca_fails(data, statistic, *, method="BCa", **kw):
        res = real(data, statistic, method=method, **kw)
        if method == "BCa":  # what scipy returns (with a warning) when BCa is degenerate
            nan = np.full_like(res.confidence_interval.low, np.nan)
            return SimpleNamespace(confidence_interval=SimpleNamespace(low=nan, high=nan))
        return res

    monkeypatch.setattr(stats.stats, "bootstrap", bca_fails)
    x = np.random.default_rng(7).normal(size=12)
    _, lo, hi, how = stats.batch_mean_ci(np.stack([x, np.full(12, 0.5)]))
    assert how[0] == "percentile" and lo[0] < x.mean() < hi[0]
    assert how[1] == "exact" and lo[1] == hi[1] == 0.5


def test_paired_comparison_matches_scipy_paired_bootstrap():
    rng = np.random.default_rng(5)
    b = rng.normal(0.8, 0.05, 20)
    a = b + rng.normal(0.01, 0.005, 20)
    res = stats.paired_comparison(a, b)
    ref = sps.bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.mean(x - y, axis=axis),
        paired=True,
        method="BCa",
        n_resamples=2000,
        random_state=0,
    )
    assert res.mean_diff == pytest.approx(np.mean(a - b))
    # same resampling of seed indices, so the same interval up to float noise
    assert res.diff_low == pytest.approx(ref.confidence_interval.low, abs=2e-4)
    assert res.diff_high == pytest.approx(ref.confidence_interval.high, abs=2e-4)
    assert 0 <= res.p_better_low <= res.p_better <= res.p_better_high <= 1
    assert res.wilcoxon_p == pytest.approx(sps.wilcoxon(a - b).pvalue)


def test_win_tie_loss_and_margins():
    assert stats.equivalence_margin(True) == 0.01
    assert stats.equivalence_margin(False, 2.0) == pytest.approx(0.02)
    assert stats.win_tie_loss(np.array([0.02, 0.005, -0.03, -0.01]), 0.01) == (1, 2, 1)


def test_pairwise_and_significance_matrix():
    rng = np.random.default_rng(6)
    table = pd.DataFrame(
        {"a": rng.normal(0.9, 0.01, 12), "b": rng.normal(0.8, 0.01, 12), "c": rng.normal(0.8, 0.01, 12)}
    )
    pw = stats.pairwise_wilcoxon_holm(table)
    assert len(pw) == 3
    sig = stats.significance_matrix(pw, ["a", "b", "c"])
    assert sig.loc["a", "b"] and sig.loc["a", "c"] and not sig.loc["b", "c"]


def test_bayesian_signed_rank_is_optional():
    res = stats.bayesian_signed_rank(np.array([0.8, 0.9]), np.array([0.7, 0.8]), rope=0.01)
    try:
        import baycomp  # noqa: F401
    except ImportError:
        assert res is None
    else:
        assert res is None or abs(sum(res) - 1) < 1e-6


def test_batch_wilcoxon_matches_row_by_row():
    rng = np.random.default_rng(8)
    d = np.round(rng.normal(0.1, 1, (40, 12)), 1)  # ties and zeros
    d[5] = 0
    d[6, :6] = 0
    batch = stats.batch_wilcoxon(d)
    rows = np.array([stats.wilcoxon_signed_rank(r) for r in d])
    np.testing.assert_allclose(batch, rows)


def test_noninferiority_is_two_one_sided_t_tests():
    d = np.array([0.01, 0.02, 0.03])
    res = stats.noninferiority(d, delta=0.01, alpha=0.05)
    t = (0.02 + 0.01) / (0.01 / np.sqrt(3))  # sd 0.01, margin −0.01
    assert res.p_noninferior == pytest.approx(sps.t.sf(t, 2)) and res.p_regression == pytest.approx(sps.t.cdf(t, 2))
    assert res.lower == pytest.approx(0.02 - sps.t.ppf(0.95, 2) * 0.01 / np.sqrt(3))
    same = stats.noninferiority(np.full(4, -0.02), delta=0.01)  # deterministic: exact answer
    assert (same.p_regression, same.p_noninferior, same.lower) == (0.0, 1.0, -0.02)
    assert np.isnan(stats.noninferiority(np.array([0.1]), 0.01).p_regression)
