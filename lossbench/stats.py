"""Statistics over seeds and datasets."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def average_ranks(table: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Average rank of each column (loss) over rows (datasets); 1 is best, ties share ranks."""
    complete = table.dropna()
    if complete.empty:
        return pd.Series(dtype=float)
    ranks = complete.rank(axis=1, ascending=not higher_is_better, method="average")
    return ranks.mean().sort_values()


# ---------------------------------------------------------------------------------------------------
# Paired comparisons, effect sizes and multiple-comparison control.
#
# Conventions: ``a`` is the candidate (or loss A), ``b`` the reference, both aligned on the same
# seeds.  "Better" follows the metric's direction: functions taking ``higher_is_better`` orient
# differences so that a positive oriented difference means A is better.
# ---------------------------------------------------------------------------------------------------

#: Below this many paired seeds the mean CI is a Student-t interval: BCa needs enough
#: resamples of distinct values to estimate its acceleration, and is erratic for n < 10.
MIN_BOOTSTRAP_N = 10
#: No interval from fewer seeds: with one degree of freedom the t quantile is 12.7 and the interval rests
#: on a variance guessed from two numbers (it printed 0.1667 ± 1.1403 for an F1 from 2 seeds).
MIN_CI_N = 3
#: Up to this many paired seeds the signed-rank test enumerates all 2^n sign patterns (exact, ties and
#: zeros included); scipy makes the same choice for its permutation test.
EXACT_WILCOXON_N = 13

#: Friedman's test is exact (every arrangement of each dataset's ranks enumerated) up to this many arrangements:
#: 3 losses on up to 7 datasets, 4 on 4, 5 on 3, 6 on 2. Beyond, χ² and Iman–Davenport's F approximations hold.
EXACT_FRIEDMAN_ARRANGEMENTS = 200_000
DEFAULT_RESAMPLES = 2000
#: Equivalence margin for metrics bounded in [0, 1] (absolute) and otherwise (relative).
BOUNDED_MARGIN = 0.01
RELATIVE_MARGIN = 0.01

# Keep one vectorised bootstrap call under ~20 M floats of resampled data.
_BOOTSTRAP_BUDGET = 20_000_000
# Keep one block of exact signed-rank null distributions under ~8 M floats.
_PERMUTATION_BUDGET = 8_000_000
#: The whole real line: a metric without declared limits.
UNBOUNDED = (float("-inf"), float("inf"))


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval and the method that produced it."""

    estimate: float
    low: float
    high: float
    method: str  # "bca", "percentile", "t", "exact" (no spread) or "none" (fewer than MIN_CI_N values)


def _t_interval(x: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    sem = x.std(axis=-1, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sem
    return mean - half, mean + half


def batch_mean_ci(
    x: np.ndarray,
    confidence: float = 0.95,
    method: str = "auto",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    limits: tuple[float, float] = UNBOUNDED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and CI for each row of a 2-D array (rows = cells, columns = seeds).

    ``method="auto"``: Student t below :data:`MIN_BOOTSTRAP_N` values, BCa bootstrap
    (``scipy.stats.bootstrap``) otherwise, falling back to the percentile bootstrap for rows where
    BCa is degenerate. ``"percentile"`` forces the percentile bootstrap. Rows without spread get a
    zero-width interval (method ``exact``); below :data:`MIN_CI_N` values there is no interval (``none``).
    Intervals are cut to ``limits``, the values the mean can take (a metric's range): the true mean
    always lies inside it, so cutting keeps the coverage and drops only impossible values.
    Returns (mean, low, high, method) arrays. Batching rows into one scipy call is what keeps
    ``compare`` fast on large tables.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    m, n = x.shape
    mean = x.mean(axis=-1) if n else np.full(m, np.nan)
    low = np.full(m, np.nan)
    high = np.full(m, np.nan)
    how = np.full(m, "none", dtype=object)
    if n < MIN_CI_N or m == 0:
        return mean, low, high, how
    spread = x.max(axis=-1) - x.min(axis=-1)
    flat = spread == 0
    low[flat], high[flat], how[flat] = mean[flat], mean[flat], "exact"
    rows = np.flatnonzero(~flat)
    if len(rows) == 0:
        return mean, low, high, how
    if method == "t" or (method == "auto" and n < MIN_BOOTSTRAP_N):
        lo, hi = _t_interval(x[rows], confidence)
        low[rows], high[rows], how[rows] = lo, hi, "t"
    else:
        _bootstrap_rows(x, rows, low, high, how, confidence, method, n_resamples, seed)
    return mean, np.clip(low, *limits), np.clip(high, *limits), how


def _bootstrap_rows(
    x: np.ndarray,
    rows: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    how: np.ndarray,
    confidence: float,
    method: str,
    n_resamples: int,
    seed: int,
) -> None:
    """Fill ``low``/``high``/``how`` of ``rows`` in place with BCa (or percentile) bootstrap intervals."""
    n = x.shape[1]
    first = "percentile" if method == "percentile" else "BCa"
    chunk = max(1, _BOOTSTRAP_BUDGET // (n * n_resamples))
    with warnings.catch_warnings():
        # BCa warns (and returns NaN) on degenerate rows; those rows are redone below.
        warnings.simplefilter("ignore")
        for start in range(0, len(rows), chunk):
            idx = rows[start : start + chunk]
            res = stats.bootstrap(
                (x[idx],),
                np.mean,
                confidence_level=confidence,
                method=first,
                n_resamples=n_resamples,
                random_state=seed,
                axis=-1,
                vectorized=True,
            )
            low[idx], high[idx] = res.confidence_interval.low, res.confidence_interval.high
            how[idx] = first.lower()
        bad = rows[~(np.isfinite(low[rows]) & np.isfinite(high[rows]))]
        if len(bad):
            res = stats.bootstrap(
                (x[bad],),
                np.mean,
                confidence_level=confidence,
                method="percentile",
                n_resamples=n_resamples,
                random_state=seed,
                axis=-1,
                vectorized=True,
            )
            low[bad], high[bad] = res.confidence_interval.low, res.confidence_interval.high
            how[bad] = "percentile"


def location_ci(
    values: np.ndarray | pd.Series,
    confidence: float = 0.95,
    seed: int = 0,
    limits: tuple[float, float] = UNBOUNDED,
) -> Interval:
    """Mean over seeds with a CI inside ``limits``: none below 3 seeds, t below 10, BCa bootstrap above."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    mean, lo, hi, how = batch_mean_ci(x[None, :], confidence, seed=seed, limits=limits)
    return Interval(float(mean[0]), float(lo[0]), float(hi[0]), str(how[0]))


def win_probability(
    d: np.ndarray, higher_is_better: bool = True, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(A beats B on a new seed) from paired differences ``d = a − b`` (rows = cells, columns = seeds).

    A Beta posterior on the win probability θ of a Bernoulli trial per seed, with the uniform
    Beta(1, 1) prior (Bayes–Laplace; the rule of succession gives its mean): after w wins, t ties and
    l losses the posterior is Beta(1 + w + t/2, 1 + l + t/2), a tie counting half a win. Returns the
    posterior mean (w + t/2 + 1) / (n + 2) and the equal-tailed ``confidence`` credible interval.
    Unlike the share of wins with a bootstrap interval (which gave [1.00, 1.00] from 3 seeds), it
    never claims certainty from a few seeds: 3 wins out of 3 give 0.80 [0.40, 0.99]. The probability
    of outperforming is Bouthillier et al. (2021), "Accounting for variance in machine learning
    benchmarks", MLSys; the Beta–Bernoulli sign test is the binary case of the Bayesian tests in
    Benavoli et al. (2017), "Time for a change", JMLR 18(77).
    """
    d = np.atleast_2d(np.asarray(d, dtype=float))
    oriented = d if higher_is_better else -d
    wins = (np.sign(oriented) + 1).sum(axis=-1) / 2  # ties count ½
    a, b = 1 + wins, 1 + d.shape[-1] - wins
    tail = (1 - confidence) / 2
    return a / (a + b), stats.beta.ppf(tail, a, b), stats.beta.ppf(1 - tail, a, b)


def cliffs_delta(a: np.ndarray, b: np.ndarray, higher_is_better: bool = True) -> float:
    """Cliff's δ = P(a_i > b_j) − P(a_i < b_j) over all (i, j) pairs, oriented so positive favours A."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    delta = float(np.sign(np.subtract.outer(a, b)).mean())
    return delta if higher_is_better else -delta


@dataclass(frozen=True)
class PairedComparison:
    """A vs B over paired seeds: raw mean difference A − B and oriented win probability / effect size."""

    n: int
    mean_diff: float
    diff_low: float
    diff_high: float
    diff_method: str
    p_better: float  # posterior mean of P(A beats B on a new seed), see win_probability
    p_better_low: float
    p_better_high: float
    cliffs_delta: float
    wilcoxon_p: float


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    limits: tuple[float, float] = UNBOUNDED,
) -> PairedComparison:
    """One cell: A and B over the same seeds (``a[i]`` and ``b[i]`` share seed i).

    The CI of the mean difference (t or paired bootstrap, inside the differences' possible range
    given the metric's ``limits``), P(A better) with its credible interval, Cliff's δ and the
    two-sided Wilcoxon signed-rank p (exact up to 13 seeds). Resampling the per-seed differences
    *is* the paired bootstrap: each resample keeps the A and B values of one seed together, as
    ``scipy.stats.bootstrap(..., paired=True)`` does. This is the unit that sequential designs
    (adding seeds until a cell is conclusive) call after each new seed.
    """
    return batch_paired_comparison(
        np.atleast_2d(a), np.atleast_2d(b), higher_is_better, confidence, n_resamples, seed, limits
    )[0]


def batch_paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    limits: tuple[float, float] = UNBOUNDED,
) -> list[PairedComparison]:
    """:func:`paired_comparison` for many cells with the same number of seeds (rows of 2-D arrays)."""
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_2d(np.asarray(b, dtype=float))
    d = a - b
    span = limits[1] - limits[0]
    mean, lo, hi, how = batch_mean_ci(d, confidence, n_resamples=n_resamples, seed=seed, limits=(-span, span))
    pmean, plo, phi = win_probability(d, higher_is_better, confidence)
    wilcoxon_p = batch_wilcoxon(d)
    return [
        PairedComparison(
            n=int(d.shape[1]),
            mean_diff=float(mean[i]),
            diff_low=float(lo[i]),
            diff_high=float(hi[i]),
            diff_method=str(how[i]),
            p_better=float(pmean[i]),
            p_better_low=float(plo[i]),
            p_better_high=float(phi[i]),
            cliffs_delta=cliffs_delta(a[i], b[i], higher_is_better),
            wilcoxon_p=float(wilcoxon_p[i]),
        )
        for i in range(d.shape[0])
    ]


@dataclass(frozen=True)
class NonInferiority:
    """One gate cell: is the oriented paired difference Δ (positive = better) above −δ, or below it?"""

    n: int
    mean: float
    lower: float  # one-sided (1 − α) lower bound of the mean Δ
    upper: float  # one-sided (1 − α) upper bound
    p_regression: float  # H0 "Δ ≥ −δ" against "Δ < −δ": confidently worse by more than the margin
    p_noninferior: float  # H0 "Δ ≤ −δ" against "Δ > −δ": no worse than the margin


def noninferiority(d: np.ndarray, delta: float, alpha: float = 0.05) -> NonInferiority:
    """Two one-sided paired t-tests of the per-seed oriented differences ``d`` against the margin −δ.

    The unit ``gate`` applies to each (dataset, loss) cell before Holm's correction across cells, and
    what a sequential design re-evaluates as seeds arrive. Without spread (deterministic runs) the
    answer is exact; below two seeds there is none (NaN).
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    nan = float("nan")
    if n < 2:
        return NonInferiority(n, float(d.mean()) if n else nan, nan, nan, nan, nan)
    mean = float(d.mean())
    if float(np.ptp(d)) == 0.0:
        worse, better = mean < -delta, mean > -delta
        return NonInferiority(n, mean, mean, mean, 0.0 if worse else 1.0, 0.0 if better else 1.0)
    sem = float(d.std(ddof=1) / np.sqrt(n))
    p_reg = float(stats.ttest_1samp(d, -delta, alternative="less").pvalue)
    p_ni = float(stats.ttest_1samp(d, -delta, alternative="greater").pvalue)
    q = float(stats.t.ppf(1 - alpha, n - 1))
    return NonInferiority(n, mean, mean - q * sem, mean + q * sem, p_reg, p_ni)


def wilcoxon_signed_rank(d: np.ndarray | pd.Series, alternative: str = "two-sided") -> float:
    """p-value of the Wilcoxon signed-rank test on paired differences (see :func:`batch_wilcoxon`).

    Non-finite values are ignored; no value gives NaN, all zeros p = 1 (nothing to reject).
    With n = 3 the two-sided test cannot go below 0.25, with n = 5 not below 0.0625.
    """
    x = np.asarray(d, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan")
    return float(batch_wilcoxon(x[None, :], alternative)[0])


def batch_wilcoxon(d: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """Wilcoxon signed-rank p-values for each row of a 2-D array of paired differences.

    Zero differences are dropped (Wilcoxon's convention, scipy's default); tied |d| share ranks.
    Without ties or zeros: scipy's exact null distribution (n ≤ 50). With them, up to
    :data:`EXACT_WILCOXON_N` values, still exact: the statistic's null distribution is enumerated
    over all 2^n sign patterns, as ``scipy.stats.wilcoxon(method=PermutationMethod())`` does (same
    p-values), but for all rows in one matrix product — scipy's permutation test runs row by row,
    seconds per thousand rows. Above 13 values with ties or zeros: scipy's normal approximation
    with tie correction. All-zero rows give p = 1.
    """
    d = np.atleast_2d(np.asarray(d, dtype=float))
    m, n = d.shape
    p = np.full(m, np.nan)
    if n == 0 or m == 0:
        return p
    nonzero = np.any(d != 0, axis=-1)
    p[~nonzero] = 1.0
    rows = np.flatnonzero(nonzero)
    if len(rows) == 0:
        return p
    srt = np.sort(np.abs(d[rows]), axis=-1)
    clean = np.all(srt[:, :1] > 0, axis=-1) & np.all(np.diff(srt, axis=-1) > 0, axis=-1)
    if n <= EXACT_WILCOXON_N and not clean.all():
        p[rows[~clean]] = _exact_signed_rank(d[rows[~clean]], alternative)
        rows, clean = rows[clean], clean[clean]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # without ties or zeros scipy's exact distribution is vectorised (and equals the enumeration)
        for mask, method in ((clean, "exact" if n <= 50 else "asymptotic"), (~clean, "asymptotic")):
            if mask.any():
                res = stats.wilcoxon(d[rows[mask]], axis=-1, alternative=alternative, method=method)
                p[rows[mask]] = np.asarray(res.pvalue, dtype=float).reshape(-1)
    return p


def _exact_signed_rank(d: np.ndarray, alternative: str) -> np.ndarray:
    """Exact p-values of the signed-rank statistic T+ for rows of at most EXACT_WILCOXON_N values."""
    m, n = d.shape
    # doubled average ranks of |d| among the non-zero values are integers: T+ is compared exactly
    ranks = stats.rankdata(np.where(d == 0, np.nan, np.abs(d)), axis=-1, nan_policy="omit")
    ranks2 = np.nan_to_num(2 * ranks, nan=0.0)
    observed = (ranks2 * (d > 0)).sum(axis=-1)
    signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)  # every sign pattern
    p = np.empty(m)
    chunk = max(1, _PERMUTATION_BUDGET // 2**n)
    for start in range(0, m, chunk):
        null = ranks2[start : start + chunk] @ signs.T
        obs = observed[start : start + chunk, None]
        less, greater = (null <= obs).mean(axis=-1), (null >= obs).mean(axis=-1)
        if alternative == "less":
            p[start : start + chunk] = less
        elif alternative == "greater":
            p[start : start + chunk] = greater
        else:
            p[start : start + chunk] = np.minimum(1.0, 2 * np.minimum(less, greater))
    return p


def holm(pvalues: np.ndarray | pd.Series | list[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (NaNs stay NaN and do not count towards the family).

    scipy only ships FDR control (``false_discovery_control``), so Holm's few lines live here.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's χ² and the Iman–Davenport F correction (less conservative) over a block design.

    ``p_exact``: the permutation p-value of the same statistic (each dataset's ranks equally likely in any order),
    for designs small enough to enumerate (:data:`EXACT_FRIEDMAN_ARRANGEMENTS`), where the two approximations are
    least trustworthy; None otherwise. F is infinite, and its p undefined (NaN), when every dataset ranks the losses
    alike.
    """

    n_datasets: int
    n_losses: int
    chi2: float
    p_chi2: float
    iman_davenport_f: float
    p_iman_davenport: float
    p_exact: float | None = None


def friedman(table: pd.DataFrame) -> FriedmanResult | None:
    """Omnibus test over rows = datasets, columns = losses (complete rows only); None if k < 3 or N < 2."""
    complete = table.dropna()
    n, k = complete.shape
    if k < 3 or n < 2:
        return None
    chi2, p = stats.friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
    chi2 = float(chi2)
    denom = n * (k - 1) - chi2
    if not np.isfinite(chi2):  # every dataset constant across losses
        return FriedmanResult(n, k, float("nan"), float("nan"), float("nan"), float("nan"))
    if denom <= 1e-9 * n * (k - 1):  # the ranks agree on every dataset: F's denominator vanishes
        f, pf = float("inf"), float("nan")
    else:
        f = (n - 1) * chi2 / denom
        pf = float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))
    return FriedmanResult(n, k, chi2, float(p), float(f), pf, friedman_exact_p(complete))


def friedman_exact_p(table: pd.DataFrame) -> float | None:
    """P(Σⱼ Rⱼ² ≥ observed) when each row's ranks (ties kept as observed) are equally likely in any order.

    Σⱼ Rⱼ² (Rⱼ: column j's rank sum) orders the arrangements as Friedman's χ² does, with or without ties.
    The first row is held fixed (a joint permutation of the columns leaves the statistic unchanged) and the rank-sum
    vectors of the others are counted row by row. None above :data:`EXACT_FRIEDMAN_ARRANGEMENTS` arrangements.
    """
    doubled = (2 * table.rank(axis=1).to_numpy()).round().astype(int)  # average ranks ×2: integers
    arrangements = 1
    for row in doubled[1:]:  # distinct orders of a row, counted before any is listed: k! / Π (size of each tie)!
        arrangements *= math.factorial(len(row)) // math.prod(math.factorial(c) for c in Counter(row.tolist()).values())
        if arrangements > EXACT_FRIEDMAN_ARRANGEMENTS:
            return None
    sums: Counter[tuple[int, ...]] = Counter({tuple(doubled[0].tolist()): 1})
    for row in doubled[1:]:
        perms = set(itertools.permutations(row.tolist()))
        grown: Counter[tuple[int, ...]] = Counter()
        for total, count in sums.items():
            for perm in perms:
                grown[tuple(a + b for a, b in zip(total, perm, strict=True))] += count
        sums = grown
    observed = int((doubled.sum(axis=0) ** 2).sum())
    extreme = sum(count for total, count in sums.items() if sum(x * x for x in total) >= observed)
    return extreme / arrangements


def equivalence_margin(bounded: bool, reference: float = float("nan")) -> float:
    """Practical-equivalence margin: 0.01 absolute for [0, 1] metrics, else 1 % of |reference|."""
    if bounded:
        return BOUNDED_MARGIN
    return RELATIVE_MARGIN * abs(reference) if np.isfinite(reference) else float("nan")


def win_tie_loss(oriented_deltas: np.ndarray, margins: np.ndarray | float) -> tuple[int, int, int]:
    """Counts of datasets where A beats B by more than the margin, is within it, or loses by more."""
    d = np.asarray(oriented_deltas, dtype=float)
    m = np.broadcast_to(np.asarray(margins, dtype=float), d.shape)
    ok = np.isfinite(d)
    d, m = d[ok], np.nan_to_num(m[ok], nan=0.0)
    wins = int(np.sum(d > m))
    losses = int(np.sum(d < -m))
    return wins, len(d) - wins - losses, losses


def pairwise_wilcoxon_holm(table: pd.DataFrame, higher_is_better: bool = True) -> pd.DataFrame:
    """Wilcoxon signed-rank for every pair of columns over rows (datasets), Holm across all pairs.

    Pairwise Wilcoxon–Holm rather than mean-rank post-hoc tests (Benavoli et al. 2016): its verdict on
    A vs B does not depend on which other losses are in the table.
    """
    complete = table.dropna()
    cols = list(complete.columns)
    rows = []
    sign = 1.0 if higher_is_better else -1.0
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            d = sign * (complete[a].to_numpy() - complete[b].to_numpy())
            rows.append(
                {
                    "loss_a": a,
                    "loss_b": b,
                    "n_datasets": len(d),
                    "median_diff": float(np.median(d)) * sign if len(d) else float("nan"),
                    "p": wilcoxon_signed_rank(d),
                }
            )
    frame = pd.DataFrame(rows, columns=["loss_a", "loss_b", "n_datasets", "median_diff", "p"])
    frame["p_holm"] = holm(frame["p"].to_numpy()) if len(frame) else []
    return frame


def significance_matrix(pairwise: pd.DataFrame, losses: list[str], alpha: float = 0.05) -> pd.DataFrame:
    """Square boolean matrix: True where the Holm-adjusted pairwise test rejects at ``alpha``."""
    sig = pd.DataFrame(False, index=losses, columns=losses)
    for row in pairwise.itertuples():
        if row.loss_a in sig.index and row.loss_b in sig.index:
            flag = bool(np.isfinite(row.p_holm) and row.p_holm < alpha)
            sig.loc[row.loss_a, row.loss_b] = sig.loc[row.loss_b, row.loss_a] = flag
    return sig


def bayesian_signed_rank(
    a: np.ndarray, b: np.ndarray, rope: float, higher_is_better: bool = True
) -> tuple[float, float, float] | None:
    """(P(A better), P(equivalent), P(B better)) from baycomp's Bayesian signed-rank test.

    Only when ``baycomp`` is importable (it is an optional extra); None otherwise or on failure.
    """
    try:
        import baycomp  # type: ignore[import-not-found]
    except ImportError:
        return None
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not higher_is_better:
        x, y = -x, -y
    try:
        p_left, p_rope, p_right = baycomp.two_on_multiple(x, y, rope=rope)
    except Exception:  # baycomp raises assorted errors on degenerate input; the test is optional
        return None
    # baycomp documents p_left as "the first classifier has higher scores" (x was oriented above).
    return float(p_left), float(p_rope), float(p_right)
