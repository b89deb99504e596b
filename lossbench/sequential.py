"""Adaptive seeding: after each round of seeds, is a (dataset, loss) cell decided, or does it need more?

The rule is a group-sequential design with a fixed maximum number of seeds and Lan–DeMets alpha
spending, read as *repeated confidence intervals* (Jennison & Turnbull 2000, ch. 7 and 9). The data of
one cell are the per-seed paired differences d = candidate − baseline, oriented so positive is better,
taken to be i.i.d. normal with unknown spread. At look k, after n_k seeds,

    L_k(γ) = mean − b_k(γ)·s/√n_k,   U_k(γ) = mean + b_k(γ)·s/√n_k,

where b_k(γ) is the boundary for the studentised mean at one-sided level γ. The boundaries spend γ
over the looks by the spending function f with f(n/max_seeds) → γ at max_seeds, so the chance that
the true mean difference μ is ever outside a bound, over all looks, is at most γ. This holds for looks at
any seed counts fixed independently of the data (rounds of unequal size, a round with failed trials),
up to ``max_seeds``; it needs no plan of looks in advance (Lan & DeMets 1983).

The boundaries are those of the joint null distribution of the t-statistics at the looks, which is free
of the spread; it has no closed form (Jennison & Turnbull 1991 integrate it numerically), so it is
simulated here with a fixed seed (Monte Carlo error under 2 % of γ). The first look's boundary is the
exact Student-t quantile. Converting normal boundaries to t quantiles look by look (the "significance
level approach") gives 0.057 instead of 0.05 at 3 → 20 seeds; calibrating on the t-statistics does not.

Verdicts, ``question="difference"`` (``lossbench run --until-conclusive``), at per-cell level α:

* equivalent: L(α) > −margin and U(α) < margin (two one-sided tests, α each, as TOST);
* better: L(α/2) > 0;   worse: U(α/2) < 0   (a two-sided test of zero at α);
* open while seeds remain below ``max_seeds``, then inconclusive.

A cell stops at the first look with a verdict; when equivalent and better (or worse) both hold, the
difference is shown to be within the margin and the verdict is equivalent, as compare's win/tie/loss
counts a tie. Every false verdict needs a bound to miss μ on its side, so for every μ the chance of any
false verdict is at most α (at μ = 0: α/2 each for better and worse; at |μ| ≥ margin: α for
equivalent, or worse against the better direction, together).

``question="non-inferiority"`` (``lossbench gate --until-conclusive``): pass when L(α) > −margin,
regression when U(α) < −margin, each at most α wrong, as the gate's one-sided tests.

The family of cells: ``Design(cells=m)`` gives each cell α/m (Bonferroni), so the chance of any false
verdict in the family is at most α whatever the cells' dependence and whenever each stops. Holm's
step-down does not carry over simply: it orders p-values taken at one time, and cells here stop at
different looks with interval verdicts (Bartroff & Lai 2010 give a sequential Holm for tests only).

References: K. K. G. Lan, D. L. DeMets (1983), Discrete sequential boundaries for clinical trials,
Biometrika 70:659–663. C. Jennison, B. W. Turnbull (1989), Interim analyses: the repeated confidence
interval approach, JRSS B 51:305–361; (1991) Exact calculations for sequential t, χ² and F tests,
Biometrika 78:133–141; (2000) Group Sequential Methods with Applications to Clinical Trials.
D. J. Schuirmann (1987), two one-sided tests, J. Pharmacokinet. Biopharm. 15:657–680.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from lossbench.errors import UserError

BETTER, WORSE, EQUIVALENT = "better", "worse", "equivalent"
PASS, REGRESSION = "pass", "regression"
OPEN, INCONCLUSIVE = "open", "inconclusive"
QUESTIONS = ("difference", "non-inferiority")
SPENDING = ("pocock", "obrien-fleming")

#: Simulated paths for the boundaries: the error of a tail probability γ is about 1/√(PATHS·γ) of γ.
PATHS = 1 << 20
_BOUNDARY_SEED = 20_260_301


def spent(fraction: float, level: float, spending: str) -> float:
    """Lan–DeMets spending: the share of ``level`` spent by ``fraction`` of the maximum seeds.

    "pocock": γ·ln(1 + (e − 1)·t), nearly equal boundaries, so large effects stop early;
    "obrien-fleming": 2 − 2Φ(z_{1−γ/2}/√t), very strict early, close to the fixed design at the end.
    """
    t = min(max(fraction, 0.0), 1.0)
    if spending == "pocock":
        return level * math.log1p((math.e - 1) * t)
    if t == 0:
        return 0.0
    return float(2 * stats.norm.sf(stats.norm.isf(level / 2) / math.sqrt(t)))


@lru_cache(maxsize=64)
def boundaries(looks: tuple[int, ...], max_seeds: int, levels: tuple[float, ...], spending: str) -> np.ndarray:
    """One-sided boundaries b_k(γ) for the studentised mean at each look: shape (len(levels), len(looks)).

    For each γ: P(t_j ≤ b_j for j < k, t_k > b_k) = f(n_k/max) − f(n_{k−1}/max) under the null, where
    t_k is the t-statistic of the first n_k of i.i.d. normal values. b = inf where nothing is left to spend.
    """
    out = np.full((len(levels), len(looks)), np.inf)
    before = np.zeros(len(levels))
    # a single look (a fixed design) needs no paths: its boundary is the Student-t quantile
    paths = PATHS if len(looks) > 1 else 0
    rng = np.random.default_rng(_BOUNDARY_SEED)
    total, squares = np.zeros(paths), np.zeros(paths)
    alive = np.ones((len(levels), 2 * paths), dtype=bool)
    n = 0
    for k, look in enumerate(looks):
        for _ in range(look - n if paths else 0):
            x = rng.standard_normal(paths)
            total += x
            squares += x * x
        n = look
        mean = total / n
        t = mean / np.sqrt(np.maximum(squares - n * mean * mean, 0.0) / (n - 1) / n)
        t = np.concatenate([t, -t])  # each path and its mirror image: twice the paths for one draw
        for i, level in enumerate(levels):
            now = spent(look / max_seeds, level, spending)
            share, before[i] = now - before[i], now
            if share <= 0:
                continue
            if k == 0:  # nothing has stopped before the first look: exact
                out[i, k] = stats.t.isf(share, look - 1)
            else:
                out[i, k] = np.quantile(np.where(alive[i], t, -np.inf), 1 - share)
            alive[i] &= t <= out[i, k]
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Design:
    """The sequential design of one comparison: seeds, margin, error level and rounds.

    ``alpha`` is the family-wise level over ``cells`` cells (each cell gets α/cells). ``growth`` sets
    the plan of rounds: each look has about ``growth`` times the seeds of the previous one.
    """

    start: int
    max_seeds: int
    margin: float
    alpha: float = 0.05
    cells: int = 1
    question: str = "difference"
    spending: str = "pocock"
    growth: float = 1.6
    looks: tuple[int, ...] | None = None  # the seed counts of the looks, when not from ``growth``

    def __post_init__(self) -> None:
        if self.start < 2:
            raise UserError(
                f"A sequential comparison needs at least 2 starting seeds, got {self.start}.",
                "Start with --seeds 2 or more: one seed says nothing about the spread.",
            )
        if self.max_seeds < self.start:
            raise UserError(
                f"--max-seeds {self.max_seeds} is below the {self.start} starting seeds.",
                f"Give --max-seeds {self.start} or more, or start with fewer seeds.",
            )
        if not (math.isfinite(self.margin) and self.margin > 0):
            raise UserError(
                f"The margin must be a positive number, got {self.margin}.",
                "Give --margin as the smallest difference that matters, e.g. 0.01 for a metric in [0, 1].",
            )
        if not 0 < self.alpha < 1:
            raise UserError(f"--alpha must lie strictly between 0 and 1, got {self.alpha}.", "E.g. --alpha 0.05.")
        if self.cells < 1:
            raise UserError(f"A family needs at least one cell, got {self.cells}.")
        if self.question not in QUESTIONS:
            raise UserError(f"Unknown question {self.question!r}.", f"Use one of: {', '.join(QUESTIONS)}.")
        if self.spending not in SPENDING:
            raise UserError(f"Unknown spending function {self.spending!r}.", f"Use one of: {', '.join(SPENDING)}.")
        if not self.growth > 1:
            raise UserError(f"Rounds must grow: growth must exceed 1, got {self.growth}.")
        if self.looks is not None:
            at = tuple(self.looks)
            if not at or at[0] != self.start or at[-1] != self.max_seeds or any(b <= a for a, b in itertools.pairwise(at)):
                shown = ",".join(map(str, at))
                raise UserError(
                    f"--looks {shown} must increase from the {self.start} starting seeds to --max-seeds "
                    f"{self.max_seeds}.",
                    f"E.g. --looks {self.start},{self.max_seeds}, or leave --looks out.",
                )

    @property
    def cell_alpha(self) -> float:
        """The error level of one cell: α split evenly over the family (Bonferroni)."""
        return self.alpha / self.cells

    def plan(self) -> tuple[int, ...]:
        """Seeds at each planned look: ``looks``, or start, ×growth rounded up (at least one more seed), ..., max_seeds."""
        if self.looks is not None:
            return tuple(self.looks)
        looks = [self.start]
        while looks[-1] < self.max_seeds:
            looks.append(min(self.max_seeds, max(looks[-1] + 1, math.ceil(looks[-1] * self.growth - 1e-9))))
        return tuple(looks)

    def next_look(self, n: int) -> int:
        """Seeds at the first planned look after ``n`` seeds (``max_seeds`` at most)."""
        return next((look for look in self.plan() if look > n), self.max_seeds)


@dataclass(frozen=True)
class Decision:
    """Where one cell stands after its looks so far.

    ``n`` and ``look`` are those of the deciding look (of the last look while open or inconclusive);
    ``low``/``high`` the repeated 1 − α interval there (α/2 each side; the cell's α); ``add`` the seeds
    to run before the next look (0 once decided or at ``max_seeds``).
    """

    verdict: str
    n: int
    look: int
    estimate: float
    low: float
    high: float
    add: int

    @property
    def closed(self) -> bool:
        return self.verdict != OPEN


def decide(differences: Sequence[float] | np.ndarray, looks: Sequence[int], design: Design) -> Decision:
    """The verdict of one cell from its per-seed differences in seed order and its looks so far.

    ``looks`` are the seed counts at which the cell was looked at, increasing, the last being
    ``len(differences)``. Looks are replayed in order, so a decided cell keeps its verdict whatever
    follows and a resumed run reaches the same one.
    """
    d = np.asarray(differences, dtype=float)
    at = tuple(int(n) for n in looks)
    if d.ndim != 1 or not np.all(np.isfinite(d)):
        raise ValueError("differences must be a 1-D sequence of finite numbers")
    if not at or at[-1] != len(d) or at[0] < 2 or bool(np.any(np.diff(at) <= 0)):
        raise ValueError(f"looks must increase from 2 or more seeds to len(differences) = {len(d)}, got {at}")
    if at[-1] > design.max_seeds:
        raise ValueError(f"{at[-1]} seeds exceed the design's maximum of {design.max_seeds}")
    verdict, stop = decide_many(d[None, :], at, design)
    k = int(stop[0])
    lo2, hi2, _, _ = (b[0, k] for b in _bounds(d[None, :], at, design))
    n = at[k]
    add = design.next_look(n) - n if verdict[0] == OPEN else 0
    return Decision(str(verdict[0]), n, k + 1, float(d[:n].mean()), float(lo2), float(hi2), add)


def decide_many(d: np.ndarray, looks: tuple[int, ...], design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`decide` over rows of ``d`` (cells or simulated repetitions) sharing their looks.

    Returns the verdicts and the index of the look each row stopped at (the last look if open).
    """
    lo_hi = _bounds(d, looks, design)
    m = d.shape[0]
    verdict = np.full(m, OPEN, dtype=object)
    stop = np.full(m, len(looks) - 1)
    for k in range(len(looks)):
        now = _verdicts(*(b[:, k] for b in lo_hi), design)
        fresh = (verdict == OPEN) & (now != OPEN)
        verdict[fresh], stop[fresh] = now[fresh], k
    if looks[-1] >= design.max_seeds:
        verdict[verdict == OPEN] = INCONCLUSIVE
    return verdict, stop


def _bounds(d: np.ndarray, looks: tuple[int, ...], design: Design) -> tuple[np.ndarray, ...]:
    """L(α/2), U(α/2), L(α), U(α) at each look: arrays of shape (rows, looks)."""
    a = design.cell_alpha
    b = boundaries(looks, design.max_seeds, (a / 2, a), design.spending)
    mean = np.stack([d[:, :n].mean(axis=1) for n in looks], axis=1)
    sem = np.stack([d[:, :n].std(axis=1, ddof=1) / np.sqrt(n) for n in looks], axis=1)
    out = []
    for bk in b:
        with np.errstate(invalid="ignore"):  # inf · 0 where nothing is spent and nothing varies: set below
            half = bk * sem
        # no spread (deterministic runs): the interval is the point, where the look may decide at all
        half = np.where(sem > 0, half, np.where(np.isfinite(bk), 0.0, np.inf))
        out += [mean - half, mean + half]
    return tuple(out)


def _verdicts(lo2: np.ndarray, hi2: np.ndarray, lo: np.ndarray, hi: np.ndarray, design: Design) -> np.ndarray:
    margin = design.margin
    out = np.full(lo.shape, OPEN, dtype=object)
    if design.question == "non-inferiority":
        out[hi < -margin] = REGRESSION
        out[lo > -margin] = PASS
        return out
    out[lo2 > 0] = BETTER
    out[hi2 < 0] = WORSE
    out[(lo > -margin) & (hi < margin)] = EQUIVALENT
    return out
