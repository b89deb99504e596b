"""Simulate the sequential seeding rule (lossbench.sequential) on synthetic paired metric values.

Usage: python benchmarks/sequential_sim.py [--reps 40000] [--start 3] [--max-seeds 20] [--margin 0.01]
                                           [--alpha 0.05] [--spending pocock] [--growth 1.6] [--markdown]

Each repetition is one (dataset, loss) cell: per seed, a baseline metric value (a seed effect around 0.6,
shared by both losses, as a seed fixes the split and the initial weights) and a candidate value that
differs from it by the true difference Δ plus noise of sd σ (σ = 0.01–0.05: the per-seed sd of paired
F1 differences on the `imbalanced` suite), both clipped to [0, 1]. "normal" noise is Gaussian; "skewed"
noise is a standardised gamma with skewness −1.4 (a long tail of bad candidate seeds).

Prints (a) the rate of false verdicts at each Δ under repeated looks, for the planned rounds and for a
look after every seed, against the nominal α; (b) for normal noise, the chance of a correct verdict, the
seeds and rounds used, the seeds a fixed-N design needs for the same chance, and the chance of the
fixed design at the maximum seeds; (c) the half-width of the interval at each planned look, in units of
s, for the spending functions, an anytime-valid confidence sequence and the fixed design.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lossbench import sequential as sq

SIGMAS = (0.01, 0.03, 0.05)
NOISES = ("normal", "skewed")
MAX_FIXED = 200
#: Above this chance the fixed N would hinge on a handful of simulated cells.
TARGET_CAP = 0.99


def paired_differences(
    rng: np.random.Generator, reps: int, seeds: int, delta: float, sigma: float, noise: str
) -> np.ndarray:
    """candidate − baseline per seed, from metric values clipped to [0, 1]."""
    base = np.clip(0.6 + rng.normal(0.0, 0.03, (reps, seeds)), 0.0, 1.0)
    if noise == "normal":
        z = rng.standard_normal((reps, seeds))
    else:
        shape = 2.0  # skewness 2/√shape, mirrored: occasional seeds far below the mean
        z = -(rng.gamma(shape, 1.0, (reps, seeds)) - shape) / math.sqrt(shape)
    cand = np.clip(base + delta + sigma * z, 0.0, 1.0)
    return cand - base


def false_verdicts(verdict: np.ndarray, delta: float, margin: float) -> np.ndarray:
    """Verdicts that are wrong for the true difference Δ (question "difference")."""
    wrong = verdict == sq.WORSE if delta >= 0 else verdict == sq.BETTER
    if delta == 0:
        wrong |= verdict == sq.BETTER
    if abs(delta) >= margin:
        wrong |= verdict == sq.EQUIVALENT
    return wrong


def correct_verdicts(verdict: np.ndarray, delta: float, margin: float) -> np.ndarray:
    if delta == 0:
        return verdict == sq.EQUIVALENT
    if 0 < delta < margin:
        return (verdict == sq.EQUIVALENT) | (verdict == sq.BETTER)
    return verdict == sq.BETTER


def sequential(d: np.ndarray, design: sq.Design, looks: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verdicts, seeds used and looks made when each cell stops at its first verdict."""
    verdict, stop = sq.decide_many(d[:, : looks[-1]], looks, design)
    return verdict, np.asarray(looks)[stop], stop + 1


def fixed_power(d: np.ndarray, n: int, design: sq.Design, delta: float) -> float:
    """Chance of a correct verdict of the same rule with one look at n seeds."""
    one = sq.Design(n, n, design.margin, design.alpha, spending=design.spending)
    verdict, _ = sq.decide_many(d[:, :n], (n,), one)
    return float(correct_verdicts(verdict, delta, design.margin).mean())


def fixed_n_for(power: float, d: np.ndarray, design: sq.Design, delta: float) -> int | None:
    """Smallest fixed n whose correct-verdict chance reaches ``power`` (None beyond MAX_FIXED)."""
    if fixed_power(d, MAX_FIXED, design, delta) < power:
        return None
    lo, hi = 2, MAX_FIXED
    while lo < hi:
        mid = (lo + hi) // 2
        if fixed_power(d, mid, design, delta) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def anytime_t_critical(n: int, alpha: float, g: float = 1.0) -> float:
    """|t| at which the right-Haar mixture Bayes factor (effect-size prior N(0, g)) reaches 1/α.

    B_n = (1 + n g)^(-1/2) · [(1 + t²/ν) / (1 + t²/(ν(1 + n g)))]^(n/2), ν = n − 1 (Rouder et al. 2009);
    a test martingale under the null (Lai 1976; Pérez-Ortiz et al. 2024), so by Ville's inequality the
    interval {μ: B_n(μ) < 1/α} covers μ at every n at once with probability ≥ 1 − α.
    """
    nu = n - 1

    def log_b(t: float) -> float:
        return -0.5 * math.log1p(n * g) + n / 2 * (math.log1p(t * t / nu) - math.log1p(t * t / (nu * (1 + n * g))))

    if (n - 1) / 2 * math.log1p(n * g) <= math.log(1 / alpha):  # even t → ∞ cannot reach 1/α
        return math.inf
    hi = 1.0
    while log_b(hi) < math.log(1 / alpha):
        hi *= 2
    return optimize.brentq(lambda t: log_b(t) - math.log(1 / alpha), 0.0, hi)


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers), *(fmt.format(*r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40_000, help="simulated cells per scenario")
    parser.add_argument("--start", type=int, default=3)
    parser.add_argument("--max-seeds", type=int, default=20)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--spending", choices=sq.SPENDING, default="pocock")
    parser.add_argument("--growth", type=float, default=1.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    design = sq.Design(args.start, args.max_seeds, args.margin, args.alpha, spending=args.spending, growth=args.growth)
    plan = design.plan()
    every = tuple(range(args.start, args.max_seeds + 1))
    m = args.margin
    deltas = (0.0, m / 2, m, 2 * m, 5 * m)
    rng = np.random.default_rng(args.seed)
    se = math.sqrt(args.alpha * (1 - args.alpha) / args.reps)
    print(
        f"design: seeds {args.start} → {args.max_seeds}, looks {plan}, margin {m:g}, α = {args.alpha:g}, "
        f"{args.spending} spending; {args.reps} cells per scenario (Monte Carlo sd of a rate near α: {se:.4f})\n"
    )

    print("(a) false verdicts (better or worse at Δ = 0; worse below the margin; equivalent or worse from it on)")
    rows_a = []
    for noise in NOISES:
        for sigma in SIGMAS:
            for name, looks in (("planned", plan), ("every seed", every)):
                rates = []
                for delta in deltas:
                    d = paired_differences(rng, args.reps, args.max_seeds, delta, sigma, noise)
                    verdict, _, _ = sequential(d, design, looks)
                    rates.append(false_verdicts(verdict, delta, m).mean())
                rows_a.append([noise, f"{sigma:g}", name, *(f"{r:.4f}" for r in rates), f"{max(rates):.4f}"])
    print(table(["noise", "σ", "looks", *(f"Δ={x:g}" for x in deltas), "max"], rows_a, args.markdown))
    print(f"nominal: at most α = {args.alpha:g} at every Δ (α/2 strictly between 0 and the margin)\n")

    print("(a2) question non-inferiority (the gate's): false pass (Δ ≤ −margin) and false regression (Δ ≥ −margin)")
    gate = sq.Design(
        args.start, args.max_seeds, m, args.alpha, question="non-inferiority", spending=args.spending, growth=args.growth
    )
    gate_deltas = (-2 * m, -m, 0.0)
    rows_g = []
    for sigma in SIGMAS:
        cells = []
        for delta in gate_deltas:
            d = paired_differences(rng, args.reps, args.max_seeds, delta, sigma, "normal")
            verdict, _, _ = sequential(d, gate, plan)
            false_pass = float((verdict == sq.PASS).mean()) if delta <= -m else 0.0
            false_regression = float((verdict == sq.REGRESSION).mean()) if delta >= -m else 0.0
            cells.append(f"{false_pass:.4f} / {false_regression:.4f}")
        rows_g.append([f"{sigma:g}", *cells])
    print(table(["σ", *(f"Δ={x:g}" for x in gate_deltas)], rows_g, args.markdown))
    print(f"nominal: each at most α = {args.alpha:g}\n")

    print("(b) normal noise: correct verdicts, seeds used, and the fixed-N design with the same chance")
    rows_b = []
    for sigma in SIGMAS:
        for delta in (0.0, m / 2, 2 * m, 3 * m, 5 * m):  # not Δ = margin, where no design passes 1 − α
            d = paired_differences(rng, args.reps, args.max_seeds, delta, sigma, "normal")
            verdict, used, rounds = sequential(d, design, plan)
            power = float(correct_verdicts(verdict, delta, m).mean())
            mean_used = float(used.mean())
            fixed: int | None = None
            if power >= 0.05:
                pool = paired_differences(rng, args.reps, MAX_FIXED, delta, sigma, "normal")
                fixed = fixed_n_for(min(power, TARGET_CAP), pool, design, delta)
            saved = "-" if fixed is None else f"{100 * (1 - mean_used / fixed):.0f} %"
            at_max = fixed_power(d, args.max_seeds, design, delta)
            rows_b.append(
                [
                    f"{sigma:g}",
                    f"{delta:g}",
                    f"{power:.3f}",
                    f"{float((verdict == sq.INCONCLUSIVE).mean()):.3f}",
                    f"{mean_used:.1f}",
                    f"{float(rounds.mean()):.1f}",
                    "-" if fixed is None else str(fixed),
                    saved,
                    f"{at_max:.3f}",
                ]
            )
    print(
        table(
            [
                "σ",
                "Δ",
                "P(correct)",
                "P(inconcl.)",
                "mean seeds",
                "mean looks",
                "fixed N, same P",
                "seeds saved",
                f"P(correct), fixed {args.max_seeds}",
            ],
            rows_b,
            args.markdown,
        )
    )
    print("correct: equivalent at Δ = 0; equivalent or better below the margin; better from it on;")
    print(
        f"fixed N: the fewest seeds for which one look, same α and margin, reaches the same P(correct) (at most "
        f"{TARGET_CAP}); - where P(correct) < 0.05 or N > {MAX_FIXED}\n"
    )

    print("(c) half-width of the 1 − α interval at each planned look, in units of s (the seeds' sd)")
    rows_c = []
    a = design.cell_alpha
    n = np.asarray(plan)
    for spending in sq.SPENDING:
        b = sq.boundaries(plan, args.max_seeds, (a / 2,), spending)[0]
        rows_c.append([f"{spending} spending", *(f"{x:.3f}" for x in b / np.sqrt(n))])
    cs = [anytime_t_critical(int(k), a) for k in plan]
    rows_c.append(["anytime-valid t (g = 1)", *(f"{c / math.sqrt(k):.3f}" for c, k in zip(cs, plan, strict=True))])
    rows_c.append(["fixed N (one look)", *(f"{stats.t.isf(a / 2, k - 1) / math.sqrt(k):.3f}" for k in plan)])
    print(table(["interval", *(f"n={k}" for k in plan)], rows_c, args.markdown))
    print(f"\n{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
