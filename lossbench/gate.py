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

Every (dataset, loss) cell of the baseline stays in the table: a cell with no judged seed is FAILED
(its candidate trials failed: failed, timeout, oom, crashed), MISSING (no candidate trial, allowed by
``--max-missing``) or NO BASELINE (the baseline's own trials failed).

Exit codes: 0 pass, 1 regression or changed, 2 usage, 3 not comparable, 4 more candidate trials
failed than ``--max-failed`` allows (or nothing could be judged), 5 inconclusive under ``--strict``.
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

from lossbench import stats
from lossbench.compare import jsonable
from lossbench.errors import IncomparableError, InfrastructureError, UserError
from lossbench.results import KEY, MetricChoice, label_sets, load_trials, metric_values, resolve_inputs, set_keys
from lossbench.store import read_trial_files

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE, EXIT_INCOMPARABLE, EXIT_INFRA, EXIT_INCONCLUSIVE = 0, 1, 2, 3, 4, 5
PASS, REGRESSION, INCONCLUSIVE, CHANGED = "PASS", "REGRESSION", "INCONCLUSIVE", "CHANGED"
#: Cells with no judged seed, and why; they count as inconclusive (``--strict`` fails on them).
FAILED, MISSING, NO_BASELINE = "FAILED", "MISSING", "NO BASELINE"
INFRASTRUCTURE_FAILURE = "INFRASTRUCTURE_FAILURE"
#: Statuses that mean the machine, not the loss, failed: such trials cannot be judged. ``diverged`` is a result.
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
    outcome: str  # PASS, REGRESSION, CHANGED, INCONCLUSIVE, INFRASTRUCTURE_FAILURE
    exit_code: int
    cells: pd.DataFrame
    suite: pd.DataFrame
    alpha: float
    margin_source: str
    strict: bool
    n_candidate_failed: int = 0
    notes: list[str] = field(default_factory=list)
    max_failed: int = 0
    n_candidate_trials: int = 0  # candidate trials that pair with a usable baseline trial

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
            "n_candidate_trials": self.n_candidate_trials,
            "n_candidate_failed": self.n_candidate_failed,
            "max_failed": self.max_failed,
            "cells": records(self.cells),
            "suite": records(self.suite),
            "notes": self.notes,
        }


# -- comparability ----------------------------------------------------------------------------------


def check_comparable(base: pd.DataFrame, cand: pd.DataFrame) -> list[str]:
    """Reasons the two result sets cannot be compared (empty when they can).

    Schema versions are checked when the files are read; here, among what both sides have: suite
    version, configuration and protocol per suite, data hash per dataset and loss version per loss.
    """
    base = base.assign(**set_keys(base))
    cand = cand.assign(**set_keys(cand))
    problems = []
    checks = [(c, "suite") for c in ("suite_version", "config_hash", "protocol")]
    checks += [("data_hash", "dataset"), ("loss_version", "loss")]
    for column, by in checks:
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


def _load_pair(
    first: Sequence[str | Path] | pd.DataFrame, second: Sequence[str | Path] | pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Both result sets, and whether they are the same trial files given twice."""
    if isinstance(first, pd.DataFrame) or isinstance(second, pd.DataFrame):
        a = first if isinstance(first, pd.DataFrame) else load_trials(first)
        b = second if isinstance(second, pd.DataFrame) else load_trials(second)
        return a, b, False
    fa, fb = resolve_inputs(first), resolve_inputs(second)
    same = {f.resolve() for f in fa} == {f.resolve() for f in fb}
    return read_trial_files(fa), read_trial_files(fb), same


def _label_both(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Label comparable sets over both sides at once, so a dataset gets the same label on each."""
    if a.empty or b.empty:
        return a, b
    both = label_sets(pd.concat([a.drop(columns="set", errors="ignore"), b.drop(columns="set", errors="ignore")],
                                ignore_index=True))
    return both.iloc[: len(a)].set_axis(a.index), both.iloc[len(a) :].set_axis(b.index)


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
    max_failed: int = 0,
) -> GateResult:
    """Judge ``candidate`` against ``baseline``; raises IncomparableError (3) when they cannot be compared.

    More than ``max_failed`` candidate trials with an infrastructure failure (or no judged trial at
    all) make the outcome INFRASTRUCTURE_FAILURE, exit 4, unless a regression was found (exit 1).
    """
    if mode not in ("stat", "exact"):
        raise UserError(f"Unknown --mode {mode!r}.", "Use stat or exact.")
    base, cand, same = _load_pair(baseline, candidate)
    if base.empty:
        raise IncomparableError("The baseline has no trials.", "Check the --baseline paths.")
    if cand.empty:
        raise InfrastructureError(
            "The candidate has no trials.", "Check the --candidate paths and the run's log."
        )
    if same:
        raise UserError(
            "--baseline and --candidate name the same result files: the gate would compare a run with itself.",
            "Pass the baseline run's results with --baseline and the candidate run's with --candidate.",
        )
    problems = check_comparable(base, cand)
    if problems:
        raise IncomparableError(
            "Baseline and candidate are not comparable: " + "; ".join(problems) + ".",
            "Regenerate the baseline with the same suite, configuration, protocol, data and loss versions.",
        )
    base, cand = _label_both(base, cand)
    choice, bvals = metric_values(base, metric)
    cchoice, cvals = metric_values(cand, choice.name)
    if cchoice.higher_is_better != choice.higher_is_better:
        raise IncomparableError(f"Metric {choice.name!r} has opposite directions in baseline and candidate.")
    pairs = _paired(base, cand, bvals, cvals)
    if not (pairs["base_status"].notna() & pairs["cand_status"].notna()).any():
        raise IncomparableError(
            "Baseline and candidate share no (dataset, loss, seed) trial.",
            "Gate a candidate run of the same suite and seeds as the baseline.",
        )
    base_ok = pairs["base_status"].eq("ok") & np.isfinite(pairs["base"])
    if not base_ok.any():
        raise IncomparableError(
            f"The baseline has no usable trial ({int(pairs['base_status'].notna().sum())} trials, none ok).",
            "Regenerate the baseline from a run whose trials succeeded.",
        )
    absent = base_ok & pairs["cand_status"].isna()
    notes: list[str] = []
    if absent.sum() > max_missing:
        show = ", ".join(f"{r.dataset}/{r.loss}/seed {r.seed}" for r in pairs[absent].head(5).itertuples())
        raise IncomparableError(
            f"{int(absent.sum())} baseline trials have no candidate trial (e.g. {show}).",
            "Run the same suite and seeds for the candidate, or allow gaps with --max-missing N.",
        )
    if absent.any():
        notes.append(f"{int(absent.sum())} baseline trials have no candidate trial (allowed by --max-missing).")
    new = pairs["base_status"].isna()
    if new.any():
        notes.append(f"{int(new.sum())} candidate trials have no baseline trial and are not gated.")
    cand_failed = base_ok & pairs["cand_status"].isin(INFRA_STATUSES)
    n_failed = int(cand_failed.sum())
    n_candidate = int((base_ok & pairs["cand_status"].notna()).sum())
    if n_failed:
        statuses = pairs.loc[cand_failed, "cand_status"].value_counts()
        notes.append(
            f"{n_failed} of {n_candidate} candidate trials failed ({', '.join(f'{n} {s}' for s, n in statuses.items())}; "
            f"--max-failed allows {max_failed}); they are left out of their cells."
        )
    usable = pairs[base_ok & pairs["cand_status"].notna() & ~cand_failed].copy()
    _score_bad_candidates(usable, choice, notes)
    if mode == "exact":
        cells = _exact_cells(usable, atol, rtol)
        suite = pd.DataFrame(columns=["loss", "n_datasets", "median_norm_diff", "p", "p_holm", "verdict"])
        margin_source = f"atol={atol:g}, rtol={rtol:g}"
    else:
        cal = read_calibration(calibration) if isinstance(calibration, (str, Path)) else calibration
        usable["d"] = (1.0 if choice.higher_is_better else -1.0) * (usable["cand"] - usable["base"])
        cells, margin_source = _stat_cells(usable, choice, cal, alpha)
        suite = _suite_level(cells, alpha)
        if len(usable) and (usable["cand"] == usable["base"]).all():
            notes.append(
                "Every candidate value equals its baseline value: expected for a change that does not touch "
                "the gated code on a deterministic run, else check that the candidate is a new run."
            )
    cells = _account(cells, pairs, base_ok, absent, cand_failed)
    suite = _suite_unjudged(suite, cells)
    outcome, code = _outcome(cells, suite, strict, n_failed, max_failed)
    return GateResult(
        mode, choice, outcome, code, cells, suite, alpha, margin_source, strict, n_failed, notes, max_failed,
        n_candidate,
    )


def _score_bad_candidates(usable: pd.DataFrame, choice: MetricChoice, notes: list[str]) -> None:
    """A diverged or non-finite candidate is a quality failure: it counts as the worst value seen on its dataset."""
    bad = ~(usable["cand_status"].eq("ok") & np.isfinite(usable["cand"]))
    if not bad.any():
        return
    values = pd.concat([usable["base"], usable["cand"]])
    finite = np.isfinite(values)  # an inf candidate is not a value seen: it is what is being scored
    worst = (
        values[finite]
        .groupby(pd.concat([usable["dataset"], usable["dataset"]])[finite])
        .agg("min" if choice.higher_is_better else "max")
    )
    usable.loc[bad, "cand"] = usable.loc[bad, "dataset"].map(worst)
    notes.append(
        f"{int(bad.sum())} candidate trials diverged or gave no value; scored as the worst value seen on their dataset."
    )


_VERDICT_ORDER = {REGRESSION: 0, CHANGED: 0, FAILED: 1, MISSING: 1, NO_BASELINE: 1, INCONCLUSIVE: 2, PASS: 3}


def _account(
    cells: pd.DataFrame, pairs: pd.DataFrame, base_ok: pd.Series, absent: pd.Series, failed: pd.Series
) -> pd.DataFrame:
    """Every baseline (dataset, loss) cell, judged or not, with its baseline seeds and candidate failures."""
    counts = (
        pairs.loc[pairs["base_status"].notna(), ["dataset", "loss"]]
        .assign(n_baseline=base_ok, n_failed=failed, n_missing=absent)
        .groupby(["dataset", "loss"], sort=True)[["n_baseline", "n_failed", "n_missing"]]
        .sum()
        .astype(int)
        .reset_index()
    )
    base_mean = pairs["base"].where(base_ok).groupby([pairs["dataset"], pairs["loss"]]).mean()
    out = counts.merge(cells, on=["dataset", "loss"], how="left")
    out["n"] = out["n"].fillna(0).astype(int)
    # an unjudged cell still shows what the baseline scored there
    fallback = [base_mean.get((d, loss), np.nan) for d, loss in zip(out["dataset"], out["loss"], strict=True)]
    out["baseline"] = out["baseline"].fillna(pd.Series(fallback, index=out.index)) if "baseline" in out else fallback
    unjudged = out["verdict"].isna()
    out.loc[unjudged, "verdict"] = np.where(
        out.loc[unjudged, "n_baseline"] == 0,
        NO_BASELINE,
        np.where(out.loc[unjudged, "n_failed"] > 0, FAILED, MISSING),
    )
    order = out["verdict"].map(_VERDICT_ORDER)
    if "std_diff" in out:  # worst standardised difference first within a verdict, as a reviewer reads it
        out = out.assign(_o=order).sort_values(["_o", "std_diff"], kind="stable", na_position="last")
    else:
        out = out.assign(_o=order).sort_values("_o", kind="stable")
    return out.drop(columns="_o").reset_index(drop=True)


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
        test = stats.noninferiority(d, delta, alpha)
        p_better, p_low, p_high = (float(v[0]) for v in stats.win_probability(d[None, :], True, 1 - alpha))
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
                "lower": test.lower,
                "upper": test.upper,
                "p_better": p_better,
                "p_better_low": p_low,
                "p_better_high": p_high,
                "p_regression": test.p_regression,
                "p_noninferior": test.p_noninferior,
            }
        )
    cells = pd.DataFrame(rows)
    if cells.empty:
        return pd.DataFrame(columns=["dataset", "loss", "n", "verdict"]), "none"
    # Holm across cells, separately for each one-sided question
    cells["p_regression_holm"] = stats.holm(cells["p_regression"].to_numpy())
    cells["p_noninferior_holm"] = stats.holm(cells["p_noninferior"].to_numpy())
    cells["verdict"] = np.where(
        cells["p_regression_holm"] < alpha,
        REGRESSION,
        np.where(cells["p_noninferior_holm"] < alpha, PASS, INCONCLUSIVE),
    )
    cells["std_diff"] = cells["oriented_diff"] / cells["delta"]
    return cells, " + ".join(sorted(sources))


SUITE_COLUMNS = ["loss", "n_datasets", "median_diff", "median_norm_diff", "p", "p_holm", "verdict"]


def _suite_level(cells: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per loss over datasets: one-sided Wilcoxon on mean Δ (worse) and median Δ/δ below −½."""
    rows = []
    for loss, g in cells.groupby("loss", sort=True) if len(cells) else []:
        d = g["oriented_diff"].to_numpy(dtype=float)
        norm = (g["oriented_diff"] / g["delta"]).to_numpy(dtype=float)
        rows.append(
            {
                "loss": loss,
                "n_datasets": len(d),
                "median_diff": float(np.median(d)),
                "median_norm_diff": float(np.median(norm)),
                "p": stats.wilcoxon_signed_rank(d, alternative="less"),
            }
        )
    suite = pd.DataFrame(rows, columns=SUITE_COLUMNS[:-2])
    suite["p_holm"] = stats.holm(suite["p"].to_numpy()) if len(suite) else []
    suite["verdict"] = np.where(
        (suite["p_holm"] < alpha) & (suite["median_norm_diff"] < -0.5), REGRESSION, PASS
    )
    return suite


def _suite_unjudged(suite: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """A loss with no judged cell still gets its suite row: FAILED when all its cells failed."""
    rows = []
    for loss, g in cells.groupby("loss", sort=True):
        if loss not in set(suite.get("loss", [])) and (g["n"] == 0).all():
            verdict = FAILED if (g["verdict"] == FAILED).all() else INCONCLUSIVE
            rows.append({"loss": loss, "n_datasets": 0, "verdict": verdict})
    if not rows:
        return suite
    extra = pd.DataFrame(rows)
    return extra if suite.empty else pd.concat([suite, extra], ignore_index=True)


def _outcome(
    cells: pd.DataFrame, suite: pd.DataFrame, strict: bool, n_failed: int, max_failed: int
) -> tuple[str, int]:
    verdicts = set(cells["verdict"]) | set(suite["verdict"])
    if REGRESSION in verdicts:
        return REGRESSION, EXIT_REGRESSION
    if CHANGED in verdicts:
        return CHANGED, EXIT_REGRESSION
    judged = bool((cells["n"] > 0).any())
    if n_failed > max_failed or (n_failed and not judged):
        return INFRASTRUCTURE_FAILURE, EXIT_INFRA
    if verdicts & {INCONCLUSIVE, FAILED, MISSING, NO_BASELINE}:
        return INCONCLUSIVE, EXIT_INCONCLUSIVE if strict else EXIT_PASS
    return PASS, EXIT_PASS


# -- calibration ------------------------------------------------------------------------------------

#: What to do when the two A/A runs are the same numbers: `lossbench run --seed-offset N` runs seeds N..N+k-1.
OTHER_SEEDS_HINT = (
    "Run the second A/A run on other seeds, e.g. `lossbench run --suite SUITE --seeds K --seed-offset K "
    "--out aa-2` after `lossbench run --suite SUITE --seeds K --out aa-1`, then calibrate aa-1 aa-2."
)


def calibrate(
    run_a: Sequence[str | Path] | pd.DataFrame,
    run_b: Sequence[str | Path] | pd.DataFrame,
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Seed-to-seed noise σ_AA per metric from two result sets of the same code (A/A).

    Trials pair by (dataset, loss, seed); when the two runs share no seeds, the i-th seed of A pairs
    with the i-th of B within each (dataset, loss). σ_AA is the pooled within-cell standard deviation
    of the paired differences (variances weighted by their degrees of freedom). Two runs whose paired
    values are all identical (the same files, or a deterministic run repeated on the same seeds)
    measure no noise: that is refused (exit 3) with the advice to rerun on other seeds.
    """
    a, b, same = _load_pair(run_a, run_b)
    if same:
        raise UserError("The two A/A runs name the same result files: σ_AA would be 0.", OTHER_SEEDS_HINT)
    problems = check_comparable(a, b)
    if problems:
        raise IncomparableError(
            "The two runs are not an A/A pair: " + "; ".join(problems) + ".",
            "Calibrate with two runs of the same suite and code.",
        )
    a, b = _label_both(a, b)
    if metrics is None:
        primaries = set(a.loc[a["status"] == "ok", "metric"].dropna())
        extra = {c[2:] for c in a.columns if c.startswith("m_") and a[c].notna().any()}
        metrics = sorted(primaries | extra)
    out: dict[str, Any] = {}
    identical = True
    for name in metrics:
        choice, va = metric_values(a, name)
        _, vb = metric_values(b, name)
        fa = a[KEY].assign(v=va.to_numpy())[(a["status"] == "ok").to_numpy()]
        fb = b[KEY].assign(v=vb.to_numpy())[(b["status"] == "ok").to_numpy()]
        merged = fa.merge(fb, on=KEY, suffixes=("_a", "_b"))
        same_seeds = not merged.empty
        if not same_seeds:  # no common seeds: pair by seed order within each cell
            fa = fa.sort_values(KEY).assign(rank=lambda f: f.groupby(["dataset", "loss"]).cumcount())
            fb = fb.sort_values(KEY).assign(rank=lambda f: f.groupby(["dataset", "loss"]).cumcount())
            merged = fa.merge(fb, on=["dataset", "loss", "rank"], suffixes=("_a", "_b"))
        merged = merged[np.isfinite(merged["v_a"]) & np.isfinite(merged["v_b"])]
        merged["d"] = merged["v_a"] - merged["v_b"]
        identical &= same_seeds and bool((merged["d"] == 0).all())
        groups = merged.groupby(["dataset", "loss"])["d"]
        var, dof = groups.var(ddof=1), groups.count() - 1
        keep = dof > 0
        pooled = float(np.sqrt((var[keep] * dof[keep]).sum() / dof[keep].sum())) if keep.any() else None
        out[name] = {
            "sigma_aa": pooled,
            "n_cells": int(keep.sum()),
            "n_pairs": len(merged),
            "same_seeds": same_seeds,
            "mean_diff": float(merged["d"].mean()) if len(merged) else None,
            "bounded": choice.bounded,
            "higher_is_better": choice.higher_is_better,
        }
    if identical and out:
        raise IncomparableError(
            "The two A/A runs used the same seeds and gave identical values for every trial, so they "
            "measure no seed-to-seed noise (σ_AA would be 0).",
            OTHER_SEEDS_HINT,
        )
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
