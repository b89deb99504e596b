"""Compare losses over seeds and datasets: paired per-dataset statistics and suite-level ranks.

The entry point is :func:`compare`; it returns a :class:`CompareResult` of plain DataFrames, and
``lossbench.report`` renders it (``compare``, ``report`` and the end-of-run summary alike). Values
are paired by (dataset, seed): every seed gives every loss the same split, initialisation and data
order, so per-seed differences cancel that noise. Trials of different comparable sets (suite,
version, configuration, protocol; :mod:`lossbench.results`) are never pooled: their datasets are
labelled with the set and kept apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lossbench import stats
from lossbench.errors import IncomparableError, ResultsError, UserError
from lossbench.results import KEY, MetricChoice, label_sets, metric_values, sets_table

ON_MISSING = ("drop", "error", "impute-worst")
#: The baseline when none is named: the first of these present (ce; the oracle of an unlearning suite), else the
#: first loss.
DEFAULT_BASELINES = ("ce", "retrain")


# -- pairing and missing cells ----------------------------------------------------------------------


@dataclass
class CellTable:
    """Values per (dataset, loss, seed) after the missing-cell policy, plus what the policy did."""

    values: pd.DataFrame  # dataset, loss, seed, value, imputed (bool)
    missing: pd.DataFrame  # dataset, loss, seed, reason — cells one loss lacks that another has
    n_dropped: int
    n_imputed: int


def build_cells(
    trials: pd.DataFrame, values: pd.Series, higher_is_better: bool, on_missing: str = "drop"
) -> CellTable:
    """Align trials on (dataset, seed) across losses and apply ``on_missing``.

    A cell is missing for a loss when another loss has that (dataset, seed) and this one has no row,
    or a row whose status is not ``ok`` or whose value is not finite. ``drop`` removes the (dataset,
    seed) for every loss (keeping the comparison paired), ``impute-worst`` fills the worst value seen on
    that dataset, ``error`` raises :class:`IncomparableError`. Under ``drop`` a loss with no usable
    value at all on a dataset sits that dataset out (it would otherwise drop every seed of every
    loss); it stays in ``missing``.
    """
    if on_missing not in ON_MISSING:
        raise UserError(f"Unknown --on-missing {on_missing!r}.", f"Use one of: {', '.join(ON_MISSING)}.")
    frame = pd.DataFrame(
        {
            "dataset": trials["dataset"].astype(str).to_numpy(),
            "loss": trials["loss"].astype(str).to_numpy(),
            "seed": trials["seed"].astype("int64").to_numpy(),
            "status": trials["status"].astype(str).to_numpy() if "status" in trials else "ok",
            "value": values.to_numpy(dtype=float),
        }
    )
    frame = frame.drop_duplicates(KEY, keep="last")
    losses = sorted(frame["loss"].unique())
    # the grid: every (dataset, seed) some loss has × every loss
    ds_seed = frame[["dataset", "seed"]].drop_duplicates()
    grid = ds_seed.merge(pd.DataFrame({"loss": losses}), how="cross")
    merged = grid.merge(frame, on=KEY, how="left")
    merged["usable"] = (merged["status"] == "ok") & np.isfinite(merged["value"])
    bad = ~merged["usable"]
    missing = merged.loc[bad, KEY].copy()
    missing["reason"] = (
        merged.loc[bad, "status"].fillna("absent").replace("ok", "non-finite value").to_numpy()
    )
    missing = missing.sort_values(KEY).reset_index(drop=True)
    n_dropped = n_imputed = 0
    if on_missing == "error" and len(missing):
        show = ", ".join(
            f"{r.dataset}/{r.loss}/seed {r.seed} ({r.reason})" for r in missing.head(5).itertuples()
        )
        raise IncomparableError(
            f"{len(missing)} (dataset, loss, seed) cells are missing or unusable: {show}"
            + (" …" if len(missing) > 5 else "")
            + ".",
            "Rerun the missing trials, or pass --on-missing drop or --on-missing impute-worst.",
        )
    merged["imputed"] = False
    if on_missing == "drop" and len(missing):
        present = merged.groupby(["dataset", "loss"])["usable"].transform("any")
        incomplete = merged.loc[present & bad, ["dataset", "seed"]].drop_duplicates()
        keep = merged.merge(incomplete.assign(_drop=True), on=["dataset", "seed"], how="left")["_drop"].isna()
        keep = keep.to_numpy() & present.to_numpy()
        n_dropped = int((~keep & merged["usable"].to_numpy()).sum())
        merged = merged[keep]
    elif on_missing == "impute-worst" and len(missing):
        ok_vals = merged[merged["usable"]]
        worst = (
            ok_vals.groupby("dataset")["value"].min()
            if higher_is_better
            else ok_vals.groupby("dataset")["value"].max()
        )
        fill = merged["dataset"].map(worst)
        merged.loc[bad, "value"] = fill[bad]
        merged.loc[bad, "imputed"] = True
        n_imputed = int(bad.sum())
        merged = merged[np.isfinite(merged["value"])]  # a dataset where no loss produced a value
    out = merged[[*KEY, "value", "imputed"]].sort_values(KEY).reset_index(drop=True)
    return CellTable(out, missing, n_dropped, n_imputed)


# -- the comparison ---------------------------------------------------------------------------------


@dataclass
class CompareResult:
    """Everything ``compare`` computed; DataFrames so that any renderer can use them."""

    metric: MetricChoice
    baseline: str
    losses: list[str]
    datasets: list[str]
    on_missing: str
    n_dropped: int
    n_imputed: int
    missing: pd.DataFrame  # cells one loss lacks that another has (before the policy)
    cells: pd.DataFrame  # dataset, loss, seed, value, imputed — the values compared
    per_dataset: pd.DataFrame  # one row per (dataset, loss): mean, CI and the paired diff to baseline
    summary: pd.DataFrame  # one row per loss: average rank, win/tie/loss vs baseline, counts
    pairwise: pd.DataFrame  # Wilcoxon + Holm for each pair of losses over dataset means
    friedman: stats.FriedmanResult | None
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)
    sets: pd.DataFrame = field(default_factory=pd.DataFrame)  # the comparable sets compared (results.sets_table)

    def dataset_means(self) -> pd.DataFrame:
        """Rows = datasets, columns = losses, values = mean over seeds."""
        return self.per_dataset.pivot(index="dataset", columns="loss", values="mean").reindex(
            columns=self.losses
        )

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]

        return {
            "metric": self.metric.name,
            "higher_is_better": self.metric.higher_is_better,
            "bounded": self.metric.bounded,
            "limits": [jsonable(v) for v in self.metric.limits],
            "baseline": self.baseline,
            "losses": self.losses,
            "datasets": self.datasets,
            "sets": records(self.sets),
            "confidence": self.confidence,
            "on_missing": self.on_missing,
            "n_dropped": self.n_dropped,
            "n_imputed": self.n_imputed,
            "n_missing_cells": len(self.missing),
            "missing": records(self.missing.head(1000)),
            "per_dataset": records(self.per_dataset),
            "summary": records(self.summary),
            "pairwise": records(self.pairwise),
            "friedman": None
            if self.friedman is None
            else {k: jsonable(v) for k, v in vars(self.friedman).items()},
            "notes": self.notes,
        }


def jsonable(value: Any) -> Any:
    """A numpy scalar as a plain Python value; NaN and inf as None (JSON has neither)."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def choose_baseline(losses: Iterable[str], baseline: str | None) -> str:
    names = list(losses)
    if baseline is None:
        return next((b for b in DEFAULT_BASELINES if b in names), names[0])
    if baseline not in names:
        raise UserError(
            f"Baseline loss {baseline!r} is not in the results.", f"Losses present: {', '.join(names)}."
        )
    return baseline


def _sets_with_metric(trials: pd.DataFrame, values: pd.Series, choice: MetricChoice) -> pd.Series:
    """Rows whose comparable set reports the metric at all (a set of another task may not)."""
    primary = trials["metric"].astype(str).eq(choice.name) if "metric" in trials else False
    has = pd.Series(np.isfinite(values.to_numpy()) | np.asarray(primary), index=trials.index)
    return has.groupby(trials["set"]).transform("any")


def compare(
    trials: pd.DataFrame,
    metric: str | None = None,
    baseline: str | None = None,
    on_missing: str = "drop",
    confidence: float = 0.95,
    alpha: float = 0.05,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> CompareResult:
    """Compare every loss in ``trials`` with the baseline per dataset, and all losses across datasets."""
    if trials.empty:
        raise ResultsError("No trials to compare.", "Pass result files, globs or directories with trials.")
    sets = sets_table(trials)
    trials = label_sets(trials)
    notes: list[str] = []
    choice, values = metric_values(trials, metric)
    keep = _sets_with_metric(trials, values, choice)
    if not keep.all():
        left = sorted(trials.loc[~keep, "set"].unique())
        notes.append(f"Left out (no {choice.name} values): {', '.join(left)}.")
        trials, values = trials[keep], values[keep]
        sets = sets[sets["set"].isin(trials["set"].unique())].reset_index(drop=True)
    if len(sets) > 1:
        notes.append(
            f"{len(sets)} comparable sets (suite, version, configuration, protocol): each dataset is "
            "labelled '<set> / <dataset>' and never pooled with another set's. Pass one results folder "
            "to compare one set."
        )
    table = build_cells(trials, values, choice.higher_is_better, on_missing)
    cells = table.values
    if cells.empty:
        raise IncomparableError(
            "No (dataset, seed) cell has a usable value for every loss.",
            "Use --on-missing impute-worst, or rerun the failed trials.",
        )
    losses = sorted(set(cells["loss"]) | set(table.missing["loss"]))
    base = choose_baseline(losses, baseline)
    losses = [base, *[x for x in losses if x != base]]
    datasets = sorted(set(cells["dataset"]) | set(table.missing["dataset"]))

    per_dataset = _per_dataset(cells, table, choice, base, losses, confidence, n_resamples, seed)
    means = per_dataset.pivot(index="dataset", columns="loss", values="mean").reindex(columns=losses)
    ranked = means.dropna(axis=1, how="all")  # a loss with no usable trial anywhere is not ranked
    ranks = stats.average_ranks(ranked, choice.higher_is_better)
    fried = stats.friedman(ranked)
    pairwise = stats.pairwise_wilcoxon_holm(ranked, choice.higher_is_better)
    n_complete = len(ranked.dropna())
    if n_complete < len(ranked):
        notes.append(
            f"Ranks and tests across datasets use the {n_complete} of {len(ranked)} datasets where every "
            "ranked loss has a value."
        )
    if n_complete < 6:
        notes.append(
            f"Only {n_complete} datasets: the two-sided Wilcoxon test needs at least 6 to reach "
            "p < 0.05, so pairwise tests cannot be significant."
        )
    empty = per_dataset[per_dataset["n"] == 0]
    if len(empty):
        notes.append(
            f"{len(empty)} (dataset, loss) cells have no usable trial (shown with n = 0 and their "
            "'not ok' count)."
        )
    n_min = int(per_dataset.loc[per_dataset["n"] > 0, "n"].min())
    if n_min < stats.MIN_CI_N:
        notes.append(f"Cells with fewer than {stats.MIN_CI_N} seeds get no confidence interval.")
    if n_min < stats.MIN_BOOTSTRAP_N:
        notes.append(
            f"Cells with {stats.MIN_CI_N}–{stats.MIN_BOOTSTRAP_N - 1} seeds use Student-t intervals (BCa "
            f"bootstrap from {stats.MIN_BOOTSTRAP_N}), cut to the metric's range."
        )
    summary = _summary(per_dataset, ranked, ranks, choice, base, losses)
    return CompareResult(
        choice,
        base,
        losses,
        datasets,
        on_missing,
        table.n_dropped,
        table.n_imputed,
        table.missing,
        cells,
        per_dataset,
        summary,
        pairwise,
        fried,
        confidence,
        notes,
        sets,
    )


PER_DATASET_COLUMNS = [
    "dataset",
    "loss",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "ci_method",
    "n_not_ok",
    "n_imputed",
    "n_dropped",
    "diff",
    "diff_low",
    "diff_high",
    "p_better",
    "p_better_low",
    "p_better_high",
    "cliffs_delta",
    "wilcoxon_p",
]


def _per_dataset(
    cells: pd.DataFrame,
    table: CellTable,
    choice: MetricChoice,
    base: str,
    losses: list[str],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> pd.DataFrame:
    # a dropped (dataset, seed) removes that seed from every loss: count dropped seeds per dataset
    # plain dicts: Series.get with tuple keys dominated this function on 10,000 cells
    dropped = (
        table.missing[["dataset", "seed"]].drop_duplicates().groupby("dataset").size().to_dict()
        if table.n_dropped
        else {}
    )
    not_ok = table.missing.groupby(["dataset", "loss"]).size().to_dict()
    rows: list[dict[str, Any]] = []
    wide = cells.pivot_table(index=["dataset", "seed"], columns="loss", values="value", aggfunc="first")
    imputed = cells.groupby(["dataset", "loss"])["imputed"].sum().to_dict()
    # group datasets by their seed count so each bootstrap is one vectorised call
    by_dataset = {d: g.droplevel(0) for d, g in wide.groupby(level="dataset")}
    others = [x for x in losses if x != base]
    stacks: dict[int, list[tuple[str, dict[str, np.ndarray]]]] = {}
    for d, frame in by_dataset.items():
        frame = frame.dropna(axis=1, how="all").dropna(axis=0, how="any")
        # plain arrays per loss: pandas column access is the slow part with thousands of datasets
        g = {str(c): col for c, col in zip(frame.columns, frame.to_numpy(dtype=float).T, strict=True)}
        stacks.setdefault(len(frame), []).append((d, g))
    for n, items in stacks.items():
        if n == 0:
            continue
        present = [(d, g, loss) for d, g in items for loss in losses if loss in g]
        block = np.stack([g[loss] for _, g, loss in present])
        mean, lo, hi, how = stats.batch_mean_ci(
            block, confidence, n_resamples=n_resamples, seed=seed, limits=choice.limits
        )
        pairs = [(d, g, loss) for d, g in items if base in g for loss in others if loss in g]
        comps: dict[tuple[str, str], stats.PairedComparison] = {}
        if pairs:
            a = np.stack([g[loss] for _, g, loss in pairs])
            b = np.stack([g[base] for _, g, _ in pairs])
            res = stats.batch_paired_comparison(
                a, b, choice.higher_is_better, confidence, n_resamples, seed, choice.limits
            )
            comps = {(d, loss): r for (d, _, loss), r in zip(pairs, res, strict=True)}
        for i, (d, _, loss) in enumerate(present):
            c = comps.get((d, loss))
            rows.append(
                {
                    "dataset": d,
                    "loss": loss,
                    "n": n,
                    "mean": mean[i],
                    "ci_low": lo[i],
                    "ci_high": hi[i],
                    "ci_method": how[i],
                    "n_not_ok": int(not_ok.get((d, loss), 0)),
                    "n_imputed": int(imputed.get((d, loss), 0)),
                    "n_dropped": int(dropped.get(d, 0)),
                    "diff": c.mean_diff if c else (0.0 if loss == base else np.nan),
                    "diff_low": c.diff_low if c else np.nan,
                    "diff_high": c.diff_high if c else np.nan,
                    "p_better": c.p_better if c else np.nan,
                    "p_better_low": c.p_better_low if c else np.nan,
                    "p_better_high": c.p_better_high if c else np.nan,
                    "cliffs_delta": c.cliffs_delta if c else np.nan,
                    "wilcoxon_p": c.wilcoxon_p if c else np.nan,
                }
            )
    # cells without a usable trial stay in the table, with n = 0 and what went wrong
    shown = {(r["dataset"], r["loss"]) for r in rows}
    for (d, loss), count in not_ok.items():
        if (d, loss) not in shown:
            rows.append({"dataset": d, "loss": loss, "n": 0, "ci_method": "none", "n_not_ok": int(count),
                         "n_imputed": 0, "n_dropped": int(dropped.get(d, 0))})
    frame = pd.DataFrame(rows, columns=PER_DATASET_COLUMNS)
    frame["n"] = frame["n"].astype(int)
    order = {loss: i for i, loss in enumerate(losses)}
    return frame.sort_values(
        ["dataset", "loss"], key=lambda s: s.map(order) if s.name == "loss" else s, kind="stable"
    ).reset_index(drop=True)


def _summary(
    per_dataset: pd.DataFrame,
    means: pd.DataFrame,
    ranks: pd.Series,
    choice: MetricChoice,
    base: str,
    losses: list[str],
) -> pd.DataFrame:
    sign = 1.0 if choice.higher_is_better else -1.0
    complete = means.dropna()
    rows = []
    for loss in losses:
        sub = per_dataset[per_dataset["loss"] == loss]
        used = sub[sub["n"] > 0]
        row: dict[str, Any] = {
            "loss": loss,
            "avg_rank": float(ranks.get(loss, np.nan)),
            "mean": float(used["mean"].mean()) if len(used) else float("nan"),
            "n_datasets": int(used["dataset"].nunique()),
            "n_trials": int(sub["n"].sum()),
            "n_not_ok": int(sub["n_not_ok"].sum()),
            "n_imputed": int(sub["n_imputed"].sum()),
            "n_dropped": int(sub["n_dropped"].sum()),
        }
        if loss != base and loss in complete and base in complete and len(complete):
            d = sign * (complete[loss] - complete[base]).to_numpy()
            ref = complete[base].to_numpy()
            margins = np.array([stats.equivalence_margin(choice.bounded, r) for r in ref])
            w, t, lo = stats.win_tie_loss(d, margins)
            bayes = stats.bayesian_signed_rank(
                complete[loss].to_numpy(), ref, float(np.nanmedian(margins)), choice.higher_is_better
            )
            row.update(
                {
                    "wins": w,
                    "ties": t,
                    "losses": lo,
                    "median_diff": float(np.median(d)) * sign,
                    "wilcoxon_p": stats.wilcoxon_signed_rank(d),
                }
            )
            if bayes is not None:
                row.update({"p_bayes_better": bayes[0], "p_bayes_equiv": bayes[1], "p_bayes_worse": bayes[2]})
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in ("wins", "ties", "losses"):
        if col in frame:
            frame[col] = frame[col].astype("Int64")
    return frame.sort_values("avg_rank", kind="stable", na_position="last").reset_index(drop=True)
