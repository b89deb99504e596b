"""The end-of-run summary: mean ± 95% CI per dataset × loss, average ranks, failures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console, Group
from rich.table import Table

from lossbench.stats import average_ranks, mean_ci


@dataclass
class Summary:
    metric: str
    higher_is_better: bool
    cells: pd.DataFrame  # dataset, loss, n, mean, lo, hi
    ranks: pd.Series
    failures: pd.DataFrame
    counts: dict[str, int]


def summarize(trials: pd.DataFrame, metric: str | None = None) -> Summary:
    """Summarise the primary metric (or ``metric``, an ``m_`` column name without the prefix)."""
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    ok = trials[trials["status"] == "ok"]
    primary = str(trials["metric"].dropna().iloc[0]) if len(trials) and trials["metric"].notna().any() else ""
    name = metric or primary
    column = "value" if name == primary else f"m_{name}"
    hib = bool(trials["higher_is_better"].dropna().iloc[0]) if name == primary and len(trials) else True
    if metric and metric != primary:
        from lossbench.metrics import METRICS

        hib = METRICS.get(metric).greater_is_better if metric in METRICS else True
    records = []
    if len(ok) and column in ok:
        for (dataset, loss), group in ok.groupby(["dataset", "loss"], sort=True):
            m, lo, hi = mean_ci(group[column].to_numpy(dtype=float))
            records.append({"dataset": dataset, "loss": loss, "n": len(group), "mean": m, "lo": lo, "hi": hi})
    cells = pd.DataFrame(records, columns=["dataset", "loss", "n", "mean", "lo", "hi"])
    ranks = average_ranks(cells.pivot(index="dataset", columns="loss", values="mean"), hib) if len(cells) else (
        pd.Series(dtype=float))
    bad = trials[~trials["status"].isin(["ok"])] if len(trials) else trials
    failures = bad[["dataset", "loss", "seed", "status", "error_msg"]] if len(bad) else pd.DataFrame(
        columns=["dataset", "loss", "seed", "status", "error_msg"])
    return Summary(name, hib, cells, ranks, failures, counts)


def fmt(mean: float, lo: float, hi: float) -> str:
    if not np.isfinite(mean):
        return "—"
    if not np.isfinite(lo):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {(hi - lo) / 2:.4f}"


def render(summary: Summary) -> Group:
    arrow = "↑" if summary.higher_is_better else "↓"
    parts = []
    if len(summary.cells):
        losses = list(summary.ranks.index) + sorted(set(summary.cells["loss"]) - set(summary.ranks.index))
        table = Table(title=f"{summary.metric} {arrow}  (mean ± 95% CI half-width over seeds)", title_justify="left")
        table.add_column("dataset", style="bold")
        for loss in losses:
            table.add_column(loss, justify="right")
        for dataset, group in summary.cells.groupby("dataset", sort=True):
            by_loss = group.set_index("loss")
            best = by_loss["mean"].max() if summary.higher_is_better else by_loss["mean"].min()
            cells = []
            for loss in losses:
                if loss not in by_loss.index:
                    cells.append("—")
                    continue
                c = by_loss.loc[loss]
                text = fmt(c["mean"], c["lo"], c["hi"]) + (f" (n={int(c['n'])})" if c["n"] < 2 else "")
                cells.append(f"[green]{text}[/green]" if c["mean"] == best else text)
            table.add_row(str(dataset), *cells)
        parts.append(table)
    if len(summary.ranks):
        ranks = Table(title="average rank over datasets (1 = best)", title_justify="left")
        ranks.add_column("loss")
        ranks.add_column("rank", justify="right")
        for loss, r in summary.ranks.items():
            ranks.add_row(str(loss), f"{r:.2f}")
        parts.append(ranks)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary.counts.items()))
    parts.append(f"trials — {counts or 'none'}")
    if len(summary.failures):
        fails = Table(title="trials not ok", title_justify="left", style="red")
        for col in ("dataset", "loss", "seed", "status", "reason"):
            fails.add_column(col)
        for _, r in summary.failures.head(20).iterrows():
            reason = str(r["error_msg"] or "").splitlines()[0][:100] if r["error_msg"] else ""
            fails.add_row(str(r["dataset"]), str(r["loss"]), str(r["seed"]), str(r["status"]), reason)
        parts.append(fails)
        if len(summary.failures) > 20:
            parts.append(f"… and {len(summary.failures) - 20} more (see the error_msg column).")
    return Group(*parts)


def print_summary(trials: pd.DataFrame, console: Console, metric: str | None = None) -> Summary:
    summary = summarize(trials, metric)
    console.print(render(summary))
    return summary
