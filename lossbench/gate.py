"""The CI gate: is the candidate no worse than the baseline? And A/A noise calibration.

``--mode stat`` (default) asks a non-inferiority question per (dataset, loss) cell, paired by seed:
Δ = candidate − baseline, oriented so positive is better, margin δ = max(0.005, 3·σ_AA) from a
calibration file, else 0.01 absolute (2 % of |baseline| for unbounded metrics).

* REGRESSION: H0 "Δ ≥ −δ" rejected (one-sided paired t, Holm across cells) — confidently worse by δ.
* PASS: H0 "Δ ≤ −δ" rejected (one-sided paired t, Holm across cells) — non-inferior.
* INCONCLUSIVE: neither.

Across the suite, per loss: one-sided Wilcoxon on per-dataset mean Δ (p < α) and median Δ/δ < −½
flags a REGRESSION spread thinly over many datasets.

``--mode exact`` compares cell by cell within ``atol + rtol·|baseline|``; any difference is CHANGED.

Exit codes: 0 pass, 1 regression or changed, 2 usage, 3 not comparable, 4 candidate trials failed
so nothing could be judged, 5 inconclusive under ``--strict``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from lossbench import stats
from lossbench.compare import KEY, MetricChoice, jsonable, load_trials, metric_values
from lossbench.errors import IncomparableError, InfrastructureError, UserError

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE, EXIT_INCOMPARABLE, EXIT_INFRA, EXIT_INCONCLUSIVE = 0, 1, 2, 3, 4, 5
PASS, REGRESSION, INCONCLUSIVE, CHANGED = "PASS", "REGRESSION", "INCONCLUSIVE", "CHANGED"
#: Statuses that mean the machine, not the loss, failed: such trials cannot be judged.
INFRA_STATUSES = frozenset({"failed", "timeout", "oom", "crashed"})
DELTA_MIN = 0.005
K_SIGMA = 3.0
FALLBACK_ABS = 0.01
FALLBACK_REL = 0.02
CALIBRATION_FORMAT = 1


@dataclass
class GateResult:
    """The verdict: one row per cell, per-loss suite checks, an overall outcome and its exit code."""

    mode: str
    metric: MetricChoice
    outcome: str  # PASS, REGRESSION, CHANGED, INCONCLUSIVE
    exit_code: int
    cells: pd.DataFrame
    suite: pd.DataFrame
    alpha: float
    margin_source: str
    strict: bool
    n_candidate_failed: int = 0
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.cells["verdict"].value_counts().items()}

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: jsonable(v) for k, v in r.items()} for r in df.to_dict(orient="records")]

        return {
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "mode": self.mode,
            "metric": self.metric.name,
            "higher_is_better": self.metric.higher_is_better,
            "alpha": self.alpha,
            "strict": self.strict,
            "margin_source": self.margin_source,
            "counts": self.counts(),
            "n_candidate_failed": self.n_candidate_failed,
            "cells": records(self.cells),
            "suite": records(self.suite),
            "notes": self.notes,
        }


# -- comparability ----------------------------------------------------------------------------------


def check_comparable(base: pd.DataFrame, cand: pd.DataFrame) -> list[str]:
    """Reasons the two result sets cannot be compared (empty when they can).

    Schema versions are checked when the files are read; here: suite version per suite, data hash per
    dataset and loss version per loss, among the (dataset, loss) pairs both sides have.
    """
    problems = []
    for column, by in (("suite_version", "suite"), ("data_hash", "dataset"), ("loss_version", "loss")):
        if column not in base or column not in cand or by not in base or by not in cand:
            continue
        b = base.groupby(by)[column].agg(lambda s: tuple(sorted(set(s.dropna().astype(str)))))
        c = cand.groupby(by)[column].agg(lambda s: tuple(sorted(set(s.dropna().astype(str)))))
        for key in sorted(set(b.index) & set(c.index)):
            if b[key] != c[key]:
                problems.append(
                    f"{column} of {by} {key!r} differs: baseline {', '.join(b[key]) or '-'}, "
                    f"candidate {', '.join(c[key]) or '-'}"
                )
    return problems


# -- margins ----------------------------------------------------------------------------------------


def read_calibration(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise UserError(
            f"Cannot read calibration file {str(p)!r} ({exc.strerror or exc}).",
            "Write one with `lossbench calibrate RUN_A RUN_B --out calibration.json`.",
        ) from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"Calibration file {str(p)!r} is not JSON ({exc}).", "Rewrite it with `lossbench calibrate`."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise UserError(
            f"Calibration file {str(p)!r} has no 'metrics' table.", "Rewrite it with `lossbench calibrate`."
        )
    return data


def margin_for(
    choice: MetricChoice, baseline_mean: float, calibration: dict[str, Any] | None
) -> tuple[float, str]:
    """δ for one cell and where it came from."""
    if calibration is not None:
        entry = calibration["metrics"].get(choice.name)
        if entry is not None and entry.get("sigma_aa") is not None:
            k = float(calibration.get("k", K_SIGMA))
            floor = float(calibration.get("delta_min", DELTA_MIN))
            return max(floor, k * float(entry["sigma_aa"])), "calibration"
    if choice.bounded:
        return FALLBACK_ABS, "default"
    ref = abs(baseline_mean) if math.isfinite(baseline_mean) else float("nan")
    return max(FALLBACK_REL * ref, 1e-12), "default"


# -- the gate ---------------------------------------------------------------------------------------


def _paired(base: pd.DataFrame, cand: pd.DataFrame, bvals: pd.Series, cvals: pd.Series) -> pd.DataFrame:
    b = base[KEY].assign(base=bvals.to_numpy(), base_status=base["status"].astype(str).to_numpy())
    c = cand[KEY].assign(cand=cvals.to_numpy(), cand_status=cand["status"].astype(str).to_numpy())
    for frame in (b, c):
        frame["seed"] = frame["seed"].astype("int64")
    return b.merge(c, on=KEY, how="outer")


def run_gate(
    baseline: Sequence[str | Path] | pd.DataFrame,
    candidate: Sequence[str | Path] | pd.DataFrame,
    mode: str = "stat",
    metric: str | None = None,
    calibration: str | Path | dict[str, Any] | None = None,
    alpha: float = 0.05,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    strict: bool = False,
    max_missing: int = 0,
) -> GateResult:
    """Judge ``candidate`` against ``baseline``; raises IncomparableError (3) or InfrastructureError (4)."""
    if mode not in ("stat", "exact"):
        raise UserError(f"Unknown --mode {mode!r}.", "Use stat or exact.")
    base = baseline if isinstance(baseline, pd.DataFrame) else load_trials(baseline)
    cand = candidate if isinstance(candidate, pd.DataFrame) else load_trials(candidate)
    if base.empty:
        raise IncomparableError("The baseline has no trials.", "Check the --baseline paths.")
    if cand.empty:
        raise InfrastructureError(
            "The candidate has no trials.", "Check the --candidate paths and the run's log."
        )
    problems = check_comparable(base, cand)
    if problems:
        raise IncomparableError(
            "Baseline and candidate are not comparable: " + "; ".join(problems) + ".",
            "Regenerate the baseline with the same suite, data and loss versions.",
        )
    choice, bvals = metric_values(base, metric)
    cchoice, cvals = metric_values(cand, choice.name)
    if cchoice.higher_is_better != choice.higher_is_better:
        raise IncomparableError(f"Metric {choice.name!r} has opposite directions in baseline and candidate.")
    pairs = _paired(base, cand, bvals, cvals)
    base_ok = pairs["base_status"].eq("ok") & np.isfinite(pairs["base"])
    absent = base_ok & pairs["cand_status"].isna()
    notes: list[str] = []
    if absent.sum() > max_missing:
        show = ", ".join(f"{r.dataset}/{r.loss}/seed {r.seed}" for r in pairs[absent].head(5).itertuples())
        raise IncomparableError(
            f"{int(absent.sum())} baseline trials have no candidate trial (e.g. {show}).",
            "Run the same suite and seeds for the candidate, or allow gaps with --max-missing N.",
        )
    if absent.any():
        notes.append(
            f"{int(absent.sum())} baseline trials have no candidate trial (allowed by --max-missing)."
        )
    new = pairs["base_status"].isna()
    if new.any():
        notes.append(f"{int(new.sum())} candidate trials have no baseline trial and are not gated.")
    cand_failed = base_ok & pairs["cand_status"].isin(INFRA_STATUSES)
    n_failed = int(cand_failed.sum())
    judged = base_ok & pairs["cand_status"].notna() & ~cand_failed
    if n_failed and not judged.any():
        statuses = pairs.loc[cand_failed, "cand_status"].value_counts()
        raise InfrastructureError(
            f"All {n_failed} candidate trials that pair with the baseline failed "
            f"({', '.join(f'{n} {s}' for s, n in statuses.items())}); nothing could be judged.",
            "Fix the run (see error_msg in the candidate's trials) and gate again.",
        )
    if n_failed:
        notes.append(f"{n_failed} candidate trials failed (infrastructure) and were left out of their cells.")
    usable = pairs[judged].copy()
    if usable.empty:
        raise IncomparableError(
            "Baseline and candidate share no (dataset, loss, seed) trial.",
            "Gate a candidate run of the same suite and seeds as the baseline.",
        )
    sign = 1.0 if choice.higher_is_better else -1.0
    # a diverged or non-finite candidate is a quality failure: it counts as the worst seen on the dataset
    bad_cand = ~(usable["cand_status"].eq("ok") & np.isfinite(usable["cand"]))
    if bad_cand.any():
        values = pd.concat([usable["base"], usable["cand"]])
        finite = np.isfinite(values)  # an inf candidate is not a value seen: it is what is being scored
        worst = (
            values[finite]
            .groupby(pd.concat([usable["dataset"], usable["dataset"]])[finite])
            .agg("min" if choice.higher_is_better else "max")
        )
        usable.loc[bad_cand, "cand"] = usable.loc[bad_cand, "dataset"].map(worst)
        notes.append(
            f"{int(bad_cand.sum())} candidate trials diverged or gave no value; scored as the worst "
            "value seen on their dataset."
        )
    if mode == "exact":
        cells = _exact_cells(usable, atol, rtol)
        suite = pd.DataFrame(columns=["loss", "n_datasets", "median_norm_diff", "p", "p_holm", "verdict"])
        margin_source = f"atol={atol:g}, rtol={rtol:g}"
    else:
        cal = read_calibration(calibration) if isinstance(calibration, (str, Path)) else calibration
        usable["d"] = sign * (usable["cand"] - usable["base"])
        cells, margin_source = _stat_cells(usable, choice, cal, alpha)
        suite = _suite_level(cells, alpha)
    if n_failed:
        failed = pairs[cand_failed].groupby(["dataset", "loss"]).size()  # counted once, not per cell
        cells["n_failed"] = [int(failed.get((d, loss), 0)) for d, loss in zip(cells["dataset"], cells["loss"], strict=True)]
    else:
        cells["n_failed"] = 0
    outcome, code = _outcome(cells, suite, strict)
    return GateResult(
        mode, choice, outcome, code, cells, suite, alpha, margin_source, strict, n_failed, notes
    )


def _exact_cells(usable: pd.DataFrame, atol: float, rtol: float) -> pd.DataFrame:
    usable = usable.assign(absdiff=(usable["cand"] - usable["base"]).abs())
    usable["changed"] = ~np.isclose(usable["cand"], usable["base"], atol=atol, rtol=rtol, equal_nan=False)
    grouped = usable.groupby(["dataset", "loss"], sort=True)
    cells = grouped.agg(
        n=("seed", "size"),
        baseline=("base", "mean"),
        candidate=("cand", "mean"),
        max_abs_diff=("absdiff", "max"),
        n_changed=("changed", "sum"),
    ).reset_index()
    cells["diff"] = cells["candidate"] - cells["baseline"]
    cells["verdict"] = np.where(cells["n_changed"] > 0, CHANGED, PASS)
    return cells


def _stat_cells(
    usable: pd.DataFrame, choice: MetricChoice, calibration: dict[str, Any] | None, alpha: float
) -> tuple[pd.DataFrame, str]:
    rows = []
    sources = set()
    for (dataset, loss), g in usable.groupby(["dataset", "loss"], sort=True):
        d = g["d"].to_numpy(dtype=float)
        base_mean = float(g["base"].mean())
        delta, source = margin_for(choice, base_mean, calibration)
        sources.add(source)
        n = len(d)
        mean = float(d.mean()) if n else float("nan")
        p_reg, p_ni, lo, hi = _one_sided_tests(d, delta, alpha)
        rows.append(
            {
                "dataset": dataset,
                "loss": loss,
                "n": n,
                "baseline": base_mean,
                "candidate": float(g["cand"].mean()),
                "diff": mean * (1.0 if choice.higher_is_better else -1.0),
                "oriented_diff": mean,
                "delta": delta,
                "lower": lo,
                "upper": hi,
                "p_better": stats.prob_better(g["cand"], g["base"], choice.higher_is_better),
                "p_regression": p_reg,
                "p_noninferior": p_ni,
            }
        )
    cells = pd.DataFrame(rows)
    if cells.empty:
        return cells.assign(verdict=[]), "none"
    # Holm across cells, separately for each one-sided question
    cells["p_regression_holm"] = stats.holm(cells["p_regression"].to_numpy())
    cells["p_noninferior_holm"] = stats.holm(cells["p_noninferior"].to_numpy())
    verdict = np.where(
        cells["p_regression_holm"] < alpha,
        REGRESSION,
        np.where(cells["p_noninferior_holm"] < alpha, PASS, INCONCLUSIVE),
    )
    cells["verdict"] = verdict
    # order by standardised difference, worst first (as a reviewer reads it)
    cells["std_diff"] = cells["oriented_diff"] / cells["delta"]
    cells = cells.sort_values("std_diff", kind="stable").reset_index(drop=True)
    return cells, " + ".join(sorted(sources))


def _one_sided_tests(d: np.ndarray, delta: float, alpha: float) -> tuple[float, float, float, float]:
    """p-values of "Δ < −δ" (regression) and "Δ > −δ" (non-inferior) and the one-sided (1−α) bounds.

    Paired t on the per-seed differences; without spread the answer is exact (deterministic runs).
    """
    n = len(d)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    mean = float(d.mean())
    if n < 2 or float(np.ptp(d)) == 0.0:
        if n < 2:
            return float("nan"), float("nan"), float("nan"), float("nan")
        worse, better = mean < -delta, mean > -delta
        return (0.0 if worse else 1.0), (0.0 if better else 1.0), mean, mean
    sem = float(d.std(ddof=1) / math.sqrt(n))
    p_reg = float(sps.ttest_1samp(d, -delta, alternative="less").pvalue)
    p_ni = float(sps.ttest_1samp(d, -delta, alternative="greater").pvalue)
    q = float(sps.t.ppf(1 - alpha, n - 1))
    return p_reg, p_ni, mean - q * sem, mean + q * sem


def _suite_level(cells: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per loss over datasets: one-sided Wilcoxon on mean Δ (worse) and median Δ/δ below −½."""
    rows = []
    for loss, g in cells.groupby("loss", sort=True):
        d = g["oriented_diff"].to_numpy(dtype=float)
        norm = (g["oriented_diff"] / g["delta"]).to_numpy(dtype=float)
        p = stats.wilcoxon_signed_rank(d, alternative="less") if len(d) else float("nan")
        rows.append(
            {
                "loss": loss,
                "n_datasets": len(d),
                "median_diff": float(np.median(d)) if len(d) else np.nan,
                "median_norm_diff": float(np.median(norm)) if len(d) else np.nan,
                "p": p,
            }
        )
    suite = pd.DataFrame(rows, columns=["loss", "n_datasets", "median_diff", "median_norm_diff", "p"])
    suite["p_holm"] = stats.holm(suite["p"].to_numpy()) if len(suite) else []
    suite["verdict"] = np.where(
        (suite["p_holm"] < alpha) & (suite["median_norm_diff"] < -0.5), REGRESSION, PASS
    )
    return suite


def _outcome(cells: pd.DataFrame, suite: pd.DataFrame, strict: bool) -> tuple[str, int]:
    verdicts = set(cells["verdict"]) | set(suite["verdict"]) if len(cells) else set()
    if REGRESSION in verdicts:
        return REGRESSION, EXIT_REGRESSION
    if CHANGED in verdicts:
        return CHANGED, EXIT_REGRESSION
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE, EXIT_INCONCLUSIVE if strict else EXIT_PASS
    return PASS, EXIT_PASS


# -- calibration ------------------------------------------------------------------------------------


def calibrate(
    run_a: Sequence[str | Path] | pd.DataFrame,
    run_b: Sequence[str | Path] | pd.DataFrame,
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Seed-to-seed noise σ_AA per metric from two result sets of the same code (A/A).

    Trials pair by (dataset, loss, seed); when the two runs share no seeds, the i-th seed of A pairs
    with the i-th of B within each (dataset, loss). σ_AA is the pooled within-cell standard deviation
    of the paired differences (variances weighted by their degrees of freedom).
    """
    a = run_a if isinstance(run_a, pd.DataFrame) else load_trials(run_a)
    b = run_b if isinstance(run_b, pd.DataFrame) else load_trials(run_b)
    problems = check_comparable(a, b)
    if problems:
        raise IncomparableError(
            "The two runs are not an A/A pair: " + "; ".join(problems) + ".",
            "Calibrate with two runs of the same suite and code.",
        )
    if metrics is None:
        primaries = set(a.loc[a["status"] == "ok", "metric"].dropna())
        extra = {c[2:] for c in a.columns if c.startswith("m_") and a[c].notna().any()}
        metrics = sorted(primaries | extra)
    out: dict[str, Any] = {}
    for name in metrics:
        choice, va = metric_values(a, name)
        _, vb = metric_values(b, name)
        fa = a[KEY].assign(v=va.to_numpy())[(a["status"] == "ok").to_numpy()]
        fb = b[KEY].assign(v=vb.to_numpy())[(b["status"] == "ok").to_numpy()]
        merged = fa.merge(fb, on=KEY, suffixes=("_a", "_b"))
        if merged.empty:  # no common seeds: pair by seed order within each cell
            fa = fa.sort_values(KEY).assign(rank=lambda f: f.groupby(["dataset", "loss"]).cumcount())
            fb = fb.sort_values(KEY).assign(rank=lambda f: f.groupby(["dataset", "loss"]).cumcount())
            merged = fa.merge(fb, on=["dataset", "loss", "rank"], suffixes=("_a", "_b"))
        merged = merged[np.isfinite(merged["v_a"]) & np.isfinite(merged["v_b"])]
        merged["d"] = merged["v_a"] - merged["v_b"]
        groups = merged.groupby(["dataset", "loss"])["d"]
        var, dof = groups.var(ddof=1), groups.count() - 1
        keep = dof > 0
        pooled = float(np.sqrt((var[keep] * dof[keep]).sum() / dof[keep].sum())) if keep.any() else None
        out[name] = {
            "sigma_aa": pooled,
            "n_cells": int(keep.sum()),
            "n_pairs": len(merged),
            "mean_diff": float(merged["d"].mean()) if len(merged) else None,
            "bounded": choice.bounded,
            "higher_is_better": choice.higher_is_better,
        }
    return {
        "lossbench_calibration": CALIBRATION_FORMAT,
        "k": K_SIGMA,
        "delta_min": DELTA_MIN,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": out,
    }


def write_calibration(data: dict[str, Any], path: str | Path) -> Path:
    from lossbench.store import atomic_write_bytes

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(p, json.dumps(data, indent=2).encode())
    return p
