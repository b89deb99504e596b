"""Compare losses over seeds and datasets: paired per-dataset statistics and suite-level ranks.

The entry point is :func:`compare`; it returns a :class:`CompareResult` of plain DataFrames, and
``lossbench.report`` renders it. Values are paired by (dataset, seed): every seed gives every loss
the same split, initialisation and data order, so per-seed differences cancel that noise.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench import stats
from lossbench.errors import IncomparableError, ResultsError, UserError
from lossbench.store import ResultStore, read_trial_files

ON_MISSING = ("drop", "error", "impute-worst")
DEFAULT_BASELINE = "ce"
KEY = ["dataset", "loss", "seed"]


# -- loading ----------------------------------------------------------------------------------------


def resolve_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand files, globs and result directories into a sorted list of trial Parquet files."""
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        matches = [Path(p) for p in sorted(glob.glob(text))] if glob.has_magic(text) else [Path(text)]
        if not matches:
            raise ResultsError(
                f"No files match {text!r}.", "Check the glob pattern and the working directory."
            )
        for path in matches:
            if path.is_dir():
                store = ResultStore(path)
                if store.trials_dir.is_dir():
                    store.check_schema()
                    found = store.fragments("trials")
                else:  # a plain folder of Parquet files
                    found = sorted(path.glob("*.parquet"))
                if not found:
                    raise ResultsError(
                        f"{str(path)!r} holds no trial files.",
                        "Pass a results directory written by `lossbench run`.",
                    )
                files.extend(found)
            elif path.is_file():
                files.append(path)
            else:
                raise ResultsError(f"{text!r} does not exist.", "Pass result files, globs or directories.")
    return sorted(dict.fromkeys(files))


def load_trials(inputs: Sequence[str | Path]) -> pd.DataFrame:
    """All trials from any mix of files, globs and directories (schema-checked, de-duplicated)."""
    return read_trial_files(resolve_inputs(inputs))


def load_curves(inputs: Sequence[str | Path]) -> pd.DataFrame:
    """The long per-epoch metrics table of every results directory among ``inputs``."""
    frames = []
    for item in inputs:
        for path in [Path(p) for p in glob.glob(str(item))] if glob.has_magic(str(item)) else [Path(item)]:
            if path.is_dir() and (path / "metrics").is_dir():
                frames.append(ResultStore(path).read_metrics())
    if not frames:
        return pd.DataFrame(columns=["trial_id", "split", "metric", "step", "value"])
    return pd.concat(frames, ignore_index=True)


def load_examples(inputs: Sequence[str | Path]) -> dict[str, Path]:
    """trial_id → examples file, from the results directories among ``inputs`` (or holding their trial files)."""
    roots = {f.parent.parent for f in resolve_inputs(inputs) if f.parent.name == "trials"}
    found: dict[str, Path] = {}
    for root in sorted(roots):
        folder = ResultStore(root).examples_dir
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob("*.npz"))})
    return found


# -- metric choice ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricChoice:
    name: str
    higher_is_better: bool
    bounded: bool


def _registry_metric(name: str) -> Any:
    from lossbench.metrics import METRICS  # imported late: registering metrics imports sklearn

    try:
        return METRICS.get(name)
    except UserError:
        return None


def metric_values(trials: pd.DataFrame, metric: str | None = None) -> tuple[MetricChoice, pd.Series]:
    """Pick the metric to compare and return one value per trial row.

    Default: the rows' primary metric (``metric``/``value`` columns), which must be the same for every
    row. ``--metric NAME`` takes ``value`` where NAME is the row's primary metric, else ``m_NAME``.
    """
    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    primaries = sorted(ok["metric"].dropna().unique()) if "metric" in ok else []
    if metric is None:
        if len(primaries) != 1:
            extra = sorted(c[2:] for c in trials.columns if c.startswith("m_"))
            raise UserError(
                f"The trials have {len(primaries)} primary metrics ({', '.join(primaries) or 'none'}).",
                f"Choose one with --metric (available: {', '.join(extra) or 'none'}).",
            )
        metric = str(primaries[0])
    column = f"m_{metric}"
    is_primary = trials["metric"] == metric if "metric" in trials else pd.Series(False, index=trials.index)
    if not is_primary.any() and column not in trials:
        extra = sorted(c[2:] for c in trials.columns if c.startswith("m_") and not c.endswith("_tuned"))
        raise UserError(
            f"No metric {metric!r} in these results.",
            f"Available: {', '.join(sorted(set(extra) | set(primaries))) or 'none'}.",
        )
    values = pd.Series(np.nan, index=trials.index, dtype=float)
    if column in trials:
        values = pd.to_numeric(trials[column], errors="coerce").astype(float)
    values = (
        values.where(~is_primary, pd.to_numeric(trials["value"], errors="coerce"))
        if is_primary.any()
        else values
    )
    registered = _registry_metric(metric)
    if registered is not None:
        choice = MetricChoice(metric, bool(registered.greater_is_better), bool(registered.bounded))
    else:
        # an unregistered (plug-in) metric: trust the rows' direction flag, infer boundedness from values
        hib = (
            trials.loc[is_primary, "higher_is_better"].dropna() if is_primary.any() else pd.Series(dtype=bool)
        )
        finite = values[np.isfinite(values)]
        bounded = bool(len(finite) and finite.between(0, 1).all())
        choice = MetricChoice(metric, bool(hib.iloc[0]) if len(hib) else True, bounded)
    return choice, values


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
    that dataset, ``error`` raises :class:`IncomparableError`.
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
        incomplete = missing[["dataset", "seed"]].drop_duplicates()
        keep = merged.merge(incomplete.assign(_drop=True), on=["dataset", "seed"], how="left")["_drop"].isna()
        n_dropped = int((~keep & merged["usable"]).sum())
        merged = merged[keep.to_numpy()]
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
    per_dataset: pd.DataFrame  # one row per (dataset, loss): mean ± CI and the paired diff to baseline
    summary: pd.DataFrame  # one row per loss: average rank, win/tie/loss vs baseline, counts
    pairwise: pd.DataFrame  # Wilcoxon + Holm for each pair of losses over dataset means
    friedman: stats.FriedmanResult | None
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)

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
            "baseline": self.baseline,
            "losses": self.losses,
            "datasets": self.datasets,
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
        return DEFAULT_BASELINE if DEFAULT_BASELINE in names else names[0]
    if baseline not in names:
        raise UserError(
            f"Baseline loss {baseline!r} is not in the results.", f"Losses present: {', '.join(names)}."
        )
    return baseline


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
    choice, values = metric_values(trials, metric)
    table = build_cells(trials, values, choice.higher_is_better, on_missing)
    cells = table.values
    if cells.empty:
        raise IncomparableError(
            "No (dataset, seed) cell has a usable value for every loss.",
            "Use --on-missing impute-worst, or rerun the failed trials.",
        )
    losses = sorted(cells["loss"].unique())
    base = choose_baseline(losses, baseline)
    losses = [base, *[x for x in losses if x != base]]
    datasets = sorted(cells["dataset"].unique())
    notes: list[str] = []

    per_dataset = _per_dataset(cells, table, choice, base, confidence, n_resamples, seed)
    means = per_dataset.pivot(index="dataset", columns="loss", values="mean").reindex(columns=losses)
    ranks = stats.average_ranks(means, choice.higher_is_better)
    fried = stats.friedman(means)
    pairwise = stats.pairwise_wilcoxon_holm(means, choice.higher_is_better)
    if len(means.dropna()) < 6:
        notes.append(
            f"Only {len(means.dropna())} datasets: the two-sided Wilcoxon test needs at least 6 to reach "
            "p < 0.05, so pairwise tests cannot be significant."
        )
    if per_dataset["n"].min() < stats.MIN_BOOTSTRAP_N:
        notes.append(f"Cells with fewer than {stats.MIN_BOOTSTRAP_N} seeds use Student-t intervals, not BCa.")
    summary = _summary(per_dataset, means, ranks, choice, base, losses)
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
    )


def _per_dataset(
    cells: pd.DataFrame,
    table: CellTable,
    choice: MetricChoice,
    base: str,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> pd.DataFrame:
    # a dropped (dataset, seed) removes that seed from every loss: count dropped seeds per dataset
    dropped = (
        table.missing[["dataset", "seed"]].drop_duplicates().groupby("dataset").size()
        if table.n_dropped
        else pd.Series(dtype=int)
    )
    rows: list[dict[str, Any]] = []
    wide = cells.pivot_table(index=["dataset", "seed"], columns="loss", values="value", aggfunc="first")
    imputed = cells.groupby(["dataset", "loss"])["imputed"].sum()
    # group datasets by their seed count so each bootstrap is one vectorised call
    by_dataset = {d: g.droplevel(0) for d, g in wide.groupby(level="dataset")}
    losses = [str(c) for c in wide.columns]
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
        mean, lo, hi, how = stats.batch_mean_ci(block, confidence, n_resamples=n_resamples, seed=seed)
        pairs = [(d, g, loss) for d, g in items if base in g for loss in others if loss in g]
        comps: dict[tuple[str, str], stats.PairedComparison] = {}
        if pairs:
            a = np.stack([g[loss] for _, g, loss in pairs])
            b = np.stack([g[base] for _, g, _ in pairs])
            res = stats.batch_paired_comparison(a, b, choice.higher_is_better, confidence, n_resamples, seed)
            comps = {(d, loss): r for (d, _, loss), r in zip(pairs, res, strict=True)}
        for i, (d, _, loss) in enumerate(present):
            row: dict[str, Any] = {
                "dataset": d,
                "loss": loss,
                "n": n,
                "mean": mean[i],
                "ci_low": lo[i],
                "ci_high": hi[i],
                "ci_method": how[i],
                "n_imputed": int(imputed.get((d, loss), 0)),
                "n_dropped": int(dropped.get(d, 0)),
            }
            c = comps.get((d, loss))
            row.update(
                {
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
            rows.append(row)
    cols = [
        "dataset",
        "loss",
        "n",
        "mean",
        "ci_low",
        "ci_high",
        "ci_method",
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
    frame = pd.DataFrame(rows, columns=cols)
    order = {loss: i for i, loss in enumerate([base, *others])}
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
        row: dict[str, Any] = {
            "loss": loss,
            "avg_rank": float(ranks.get(loss, np.nan)),
            "mean": float(sub["mean"].mean()),
            "n_datasets": int(sub["dataset"].nunique()),
            "n_trials": int(sub["n"].sum()),
            "n_imputed": int(sub["n_imputed"].sum()),
            "n_dropped": int(sub["n_dropped"].sum()),
        }
        if loss != base and loss in complete and base in complete:
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
