"""Plots for compare results: critical-difference diagram, intervals and seeds per dataset, quality vs
cost, curves, and example predictions where a segmentation run stored them.

matplotlib is optional (the ``plots`` extra) and imported only when a plot is drawn, always with the
non-interactive Agg backend so that plotting works on headless CI machines. Every plot is written as
``<stem>.png`` and ``<stem>.svg``, or in the ``formats`` asked for (the HTML page needs one of them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lossbench import stats
from lossbench.errors import UserError

if TYPE_CHECKING:
    from lossbench.compare import CompareResult

INSTALL_HINT = "Install the plotting extra: pip install 'lossbench[plots]'"
#: What a page or command without plots says about them.
PLOTS_MISSING = "tables only: plots need matplotlib, pip install 'lossbench[plots]'"


def plots_available() -> bool:
    """Whether matplotlib can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or a UserError naming the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("Plots need matplotlib, which is not installed.", INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: the files each plot is written as, unless a caller asks for fewer
FORMATS = ("png", "svg")


def save(fig: Any, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``stem.png`` and/or ``stem.svg`` and close the figure."""
    plt = pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{fmt}") for fmt in formats]
    try:
        for path in paths:  # an SVG costs about half a PNG again: write only what is asked for
            fig.savefig(path, dpi=120 if path.suffix == ".png" else "figure", bbox_inches="tight")
    finally:
        plt.close(fig)
    return paths


def loss_colors(losses: Sequence[str]) -> dict[str, Any]:
    """One colour per loss, the same in every panel and plot (a legend drawn once stays true)."""
    plt = pyplot()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {loss: cycle[i % len(cycle)] for i, loss in enumerate(losses)}


# -- critical difference ----------------------------------------------------------------------------


def cliques(ranks: pd.Series, significant: pd.DataFrame) -> list[list[str]]:
    """Maximal runs of rank-ordered losses whose members are pairwise not significantly different.

    Bars join consecutive losses in rank order only; a run is kept if no longer run contains it.
    """
    names = list(ranks.sort_values().index)
    runs: list[tuple[int, int]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and not any(
            bool(significant.loc[names[k], names[j + 1]]) for k in range(i, j + 1)
        ):
            j += 1
        if j > i:
            runs.append((i, j))
    maximal = [r for r in runs if not any(o != r and o[0] <= r[0] and r[1] <= o[1] for o in runs)]
    return [names[a : b + 1] for a, b in maximal]


def cd_diagram(
    ranks: pd.Series, significant: pd.DataFrame, stem: Path, title: str = "", formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Critical-difference diagram: losses on an average-rank axis (1 = best), bars join cliques of
    losses that pairwise Wilcoxon–Holm does not separate."""
    plt = pyplot()
    ranks = ranks.dropna().sort_values()
    k = len(ranks)
    groups = cliques(ranks, significant) if k else []
    half = (k + 1) // 2
    height = 1.2 + 0.3 * max(half, k - half) + 0.15 * len(groups)
    fig, ax = plt.subplots(figsize=(7, height))
    lo, hi = 1, max(k, 2)
    ax.set_xlim(lo - 0.3, hi + 0.3)
    ax.set_ylim(0, 1)
    ax.axis("off")
    top = 0.85
    ax.plot([lo, hi], [top, top], color="black", lw=1)
    for r in range(lo, hi + 1):
        ax.plot([r, r], [top, top + 0.03], color="black", lw=1)
        ax.text(r, top + 0.05, str(r), ha="center", va="bottom", fontsize=9)
    step = 0.7 / max(half, k - half, 1)
    for i, (name, rank) in enumerate(ranks.items()):
        left = i < half
        level = top - 0.1 - step * (i if left else k - 1 - i)
        x_text = lo - 0.2 if left else hi + 0.2
        ax.plot([rank, rank, x_text], [top, level, level], color="black", lw=0.8)
        ax.text(
            x_text, level, f"{name} ({rank:.2f})", ha="right" if left else "left", va="center", fontsize=9
        )
    for g_i, group in enumerate(groups):
        y = top - 0.04 - 0.035 * g_i
        ax.plot(
            [ranks[group[0]] - 0.03, ranks[group[-1]] + 0.03],
            [y, y],
            color="tab:red",
            lw=3,
            solid_capstyle="round",
        )
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, stem, formats)


# -- intervals per dataset --------------------------------------------------------------------------

#: colour of each verdict of a loss's paired difference to the baseline on one dataset
VERDICT_COLORS = {"better": "tab:green", "worse": "tab:red", "undecided": "tab:gray", "baseline": "black"}


def dataset_intervals(result: CompareResult) -> pd.DataFrame:
    """What :func:`interval_panels` draws: one row per (dataset, loss) with a usable mean.

    Columns dataset, loss, mean, ci_low, ci_high (NaN below the seeds a CI needs) and verdict: "baseline",
    or the paired Δ-vs-baseline CI read in the metric's direction: "better" or "worse" when it excludes 0,
    else "undecided".
    """
    frame = result.per_dataset
    frame = frame[frame["n"] > 0]
    sign = 1.0 if result.metric.higher_is_better else -1.0
    low = sign * pd.to_numeric(frame["diff_low" if sign > 0 else "diff_high"], errors="coerce")
    high = sign * pd.to_numeric(frame["diff_high" if sign > 0 else "diff_low"], errors="coerce")
    verdict = np.select([frame["loss"] == result.baseline, low > 0, high < 0], ["baseline", "better", "worse"],
                        default="undecided")
    out = frame[["dataset", "loss", "mean", "ci_low", "ci_high"]].assign(verdict=verdict)
    return out.reset_index(drop=True)


def interval_panels(
    frame: pd.DataFrame,
    stem: Path,
    metric: str = "",
    losses: Sequence[str] | None = None,
    baseline: str | None = None,
    max_datasets: int = 24,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """One panel per dataset: each loss's mean with its CI, coloured by its paired verdict against the
    baseline (whose mean is the dashed line). ``frame`` is :func:`dataset_intervals`."""
    plt = pyplot()
    datasets = sorted(frame["dataset"].unique())[:max_datasets]
    losses = list(losses or sorted(frame["loss"].unique()))
    ncols = min(3, max(1, len(datasets)))
    nrows = max(1, -(-len(datasets) // ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.6 * ncols, 0.6 + 0.28 * len(losses) * nrows + 0.5 * nrows), squeeze=False
    )
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        sub = frame[frame["dataset"] == dataset].set_index("loss")
        for verdict, color in VERDICT_COLORS.items():
            rows = sub[sub["verdict"] == verdict]
            if rows.empty:
                continue
            y = [losses.index(loss) for loss in rows.index]
            err = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]).clip(min=0)
            ax.errorbar(rows["mean"], y, xerr=np.nan_to_num(err), fmt="o", ms=4, capsize=2, color=color,
                        label=verdict)
        if baseline in sub.index:
            ax.axvline(float(sub.loc[baseline, "mean"]), color="black", lw=0.8, ls="--")
        ax.set_yticks(range(len(losses)), losses, fontsize=8)
        ax.set_ylim(len(losses) - 0.5, -0.5)  # the first loss on top
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel(metric, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=v) for v, c in VERDICT_COLORS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return save(fig, stem, formats)


# -- seeds per dataset ------------------------------------------------------------------------------


def seed_strips(
    cells: pd.DataFrame,
    stem: Path,
    metric: str = "",
    losses: Sequence[str] | None = None,
    max_datasets: int = 24,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """One panel per dataset: a box per loss with every seed as a jittered dot."""
    plt = pyplot()
    datasets = sorted(cells["dataset"].unique())[:max_datasets]
    losses = list(losses or sorted(cells["loss"].unique()))
    ncols = min(4, max(1, len(datasets)))
    nrows = max(1, -(-len(datasets) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        sub = cells[cells["dataset"] == dataset]
        data = [sub.loc[sub["loss"] == loss, "value"].to_numpy() for loss in losses]
        ax.boxplot(data, widths=0.5, showfliers=False)
        for i, vals in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=10, alpha=0.7, zorder=3)
        ax.set_xticks(range(1, len(losses) + 1), losses, rotation=45, ha="right", fontsize=8)
        ax.set_title(dataset, fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    fig.tight_layout()
    return save(fig, stem, formats)


# -- quality vs cost --------------------------------------------------------------------------------


def pareto_front(cost: np.ndarray, quality: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Boolean mask of points no other point beats on both cost (lower) and quality."""
    q = np.asarray(quality, dtype=float) * (1 if higher_is_better else -1)
    c = np.asarray(cost, dtype=float)
    mask = np.ones(len(c), dtype=bool)
    for i in range(len(c)):
        dominated = (c <= c[i]) & (q >= q[i]) & ((c < c[i]) | (q > q[i]))
        mask[i] = not dominated.any()
    return mask


def cost_quality(
    points: pd.DataFrame,
    stem: Path,
    metric: str = "",
    higher_is_better: bool = True,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Mean quality vs mean wall seconds per loss (``points``: loss, quality, cost), Pareto front marked."""
    plt = pyplot()
    pts = points.dropna(subset=["quality", "cost"]).sort_values("cost")
    front = pareto_front(pts["cost"].to_numpy(), pts["quality"].to_numpy(), higher_is_better)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(pts["cost"], pts["quality"], c=np.where(front, "tab:red", "tab:gray"), zorder=3)
    fp = pts[front]
    ax.step(fp["cost"], fp["quality"], where="post", color="tab:red", lw=1, label="Pareto front")
    for row in pts.itertuples():
        ax.annotate(
            str(row.loss), (row.cost, row.quality), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    ax.set_xlabel("mean wall time per trial (s)")
    ax.set_ylabel(f"mean {metric}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, stem, formats)


def cost_points(trials: pd.DataFrame, result: CompareResult, cost_column: str = "wall_s") -> pd.DataFrame:
    quality = result.cells.groupby("loss")["value"].mean()
    ok = trials[trials["status"] == "ok"] if "status" in trials else trials
    cost = (
        pd.to_numeric(ok[cost_column], errors="coerce").groupby(ok["loss"]).mean()
        if cost_column in ok
        else pd.Series(dtype=float)
    )
    return pd.DataFrame(
        {"loss": quality.index, "quality": quality.to_numpy(), "cost": cost.reindex(quality.index).to_numpy()}
    )


# -- curves -----------------------------------------------------------------------------------------


def learning_curves(
    curves: pd.DataFrame,
    trials: pd.DataFrame,
    stem: Path,
    metric: str | None = None,
    split: str = "val",
    max_datasets: int = 12,
    losses: Sequence[str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path] | None:
    """Mean per-epoch curve over seeds for each loss, one panel per dataset; None if there are no curves.

    ``losses`` fixes the order and colours (the compared losses); others with curves follow, sorted."""
    if curves.empty:
        return None
    sel = curves[curves["split"] == split]
    if metric is not None and (sel["metric"] == metric).any():
        sel = sel[sel["metric"] == metric]
    else:
        metric = str(sel["metric"].mode().iloc[0]) if len(sel) else None
        sel = sel[sel["metric"] == metric]
    if sel.empty:
        return None
    merged = sel.merge(trials[["trial_id", "dataset", "loss"]], on="trial_id", how="inner")
    if merged.empty:
        return None
    plt = pyplot()
    datasets = sorted(merged["dataset"].unique())[:max_datasets]
    order = list(losses or [])
    order += sorted(set(merged["loss"]) - set(order))
    colors = loss_colors(order)
    ncols = min(3, len(datasets))
    nrows = -(-len(datasets) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.8 * nrows), squeeze=False)
    for ax, dataset in zip(axes.flat, datasets, strict=False):
        sub = merged[merged["dataset"] == dataset]
        for loss in (name for name in order if name in set(sub["loss"])):
            mean = sub[sub["loss"] == loss].groupby("step")["value"].agg(["mean", "std"])
            ax.plot(mean.index, mean["mean"], label=str(loss), lw=1.2, color=colors[loss])
            ax.fill_between(
                mean.index,
                mean["mean"] - mean["std"].fillna(0),
                mean["mean"] + mean["std"].fillna(0),
                alpha=0.15,
                color=colors[loss],
            )
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(f"{split} {metric}", fontsize=8)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colors[loss], label=loss) for loss in order]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(order)), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 1.0))  # every loss, even one absent from the first panel
    fig.tight_layout()
    return save(fig, stem, formats)


# -- all of them ------------------------------------------------------------------------------------


def all_plots(
    result: CompareResult,
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    folder: Path,
    alpha: float = 0.05,
    examples: Mapping[str, Path] | None = None,
    formats: Sequence[str] = FORMATS,
) -> dict[str, list[Path]]:
    """Draw every plot the data allows into ``folder``; returns {plot name: [png, svg]} (or ``formats``).

    ``examples`` (trial_id → stored examples file, :func:`lossbench.results.load_examples`) adds one
    ``examples-<dataset>`` grid per dataset that has them.
    """
    folder = Path(folder)
    out: dict[str, list[Path]] = {}
    means = result.dataset_means()
    ranks = stats.average_ranks(means, result.metric.higher_is_better)
    if len(ranks) >= 2:
        sig = stats.significance_matrix(result.pairwise, list(ranks.index), alpha)
        out["critical_difference"] = cd_diagram(
            ranks,
            sig,
            folder / "critical_difference",
            f"Average rank on {result.metric.name} (bars: not different, Wilcoxon–Holm α={alpha})",
            formats,
        )
    intervals = dataset_intervals(result)
    if len(intervals):
        out["per_dataset"] = interval_panels(
            intervals, folder / "per_dataset", result.metric.name, result.losses, result.baseline, formats=formats
        )
    out["seeds"] = seed_strips(result.cells, folder / "seeds", result.metric.name, result.losses, formats=formats)
    points = cost_points(trials, result)
    if points["cost"].notna().any():
        out["cost_quality"] = cost_quality(
            points, folder / "cost_quality", result.metric.name, result.metric.higher_is_better, formats
        )
    curve_paths = learning_curves(
        curves, trials, folder / "curves", result.metric.name, losses=result.losses, formats=formats
    )
    if curve_paths:
        out["curves"] = curve_paths
    if examples:
        from lossbench.report.segmentation_plots import example_grids

        out.update(
            example_grids(trials, examples, folder, losses=result.losses, datasets=result.datasets, formats=formats)
        )
    return out
