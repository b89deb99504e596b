"""The end-of-run summary and ``lossbench report``: compare's numbers, laid out to be read at a glance.

Nothing is computed here: the means, intervals, ranks and tests are :func:`lossbench.compare.compare`'s,
so ``report`` and ``compare`` can never rank the same results differently. Heavy imports wait for the
call (``lossbench run`` imports this module at start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from lossbench.compare import CompareResult

#: Failed trials listed by name; the rest are counted.
MAX_FAILURES_SHOWN = 20


def _matrix(result: CompareResult) -> Table:
    from lossbench.report import tables

    arrow = "↑" if result.metric.higher_is_better else "↓"
    frame = tables.summary_matrix(result)
    table = Table(
        title=f"{result.metric.name} {arrow}  mean [{tables.ci_label(result)}] over seeds",
        title_justify="left",
    )
    table.add_column("dataset", style="bold")
    for loss in result.losses:
        table.add_column(escape(loss), justify="right")
    means = result.dataset_means()
    for row in frame.itertuples(index=False):
        dataset, *texts = row
        best = means.loc[dataset].max() if result.metric.higher_is_better else means.loc[dataset].min()
        cells = []
        for loss, text in zip(result.losses, texts, strict=True):
            shown = escape(str(text))
            cells.append(f"[green]{shown}[/green]" if means.loc[dataset, loss] == best else shown)
        table.add_row(escape(str(dataset)), *cells)
    return table


def _ranks(result: CompareResult) -> Table:
    from lossbench.report import tables

    frame = tables.compare_summary_rows(result)
    table = Table(
        title="average rank over datasets (1 = best), with the paired evidence against the baseline",
        title_justify="left",
        caption=f"{tables.omnibus_line(result)}\nPairwise tests and plots: `lossbench compare RESULTS`",
    )
    for col in frame.columns:
        table.add_column(escape(str(col)), justify="left" if col == "loss" else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*[escape(str(v)) for v in row])
    return table


def _failures(trials: pd.DataFrame) -> list[RenderableType]:
    bad = trials[trials["status"] != "ok"] if len(trials) else trials
    if not len(bad):
        return []
    fails = Table(title="trials not ok", title_justify="left", style="red")
    for col in ("dataset", "loss", "seed", "status", "reason"):
        fails.add_column(col)
    for r in bad.head(MAX_FAILURES_SHOWN).itertuples():
        msg = str(r.error_msg or "") if "error_msg" in bad else ""
        reason = msg.splitlines()[0][:100] if msg else ""
        fails.add_row(*(escape(str(v)) for v in (r.dataset, r.loss, r.seed, r.status, reason)))
    parts: list[RenderableType] = [fails]
    if len(bad) > MAX_FAILURES_SHOWN:
        parts.append(f"… and {len(bad) - MAX_FAILURES_SHOWN} more (see the error_msg column).")
    return parts


def render_summary(trials: pd.DataFrame, result: CompareResult | None, problem: str = "") -> Group:
    """The matrix of means with intervals, the rank table, the status counts and the failed trials."""
    parts: list[RenderableType] = []
    if result is not None:
        parts += [_matrix(result), _ranks(result)]
        parts += [f"[dim]note: {escape(n)}[/]" for n in result.notes]
    elif problem:
        parts.append(f"[yellow]No comparison: {escape(problem)}[/]")
    counts = trials["status"].value_counts().to_dict() if len(trials) else {}
    parts.append(f"trials — {', '.join(f'{k}: {v}' for k, v in sorted(counts.items())) or 'none'}")
    parts += _failures(trials)
    return Group(*parts)


def print_summary(trials: pd.DataFrame, console: Console, metric: str | None = None) -> CompareResult | None:
    """Print the summary of ``trials``; returns the comparison, or None when there is nothing to compare.

    Never raises for the results themselves (every trial failed, several primary metrics): the
    summary then says why and still lists the failed trials.
    """
    from lossbench.compare import compare
    from lossbench.errors import UserError

    result, problem = None, ""
    try:
        result = compare(trials, metric=metric)
    except UserError as exc:
        problem = str(exc)
    console.print(render_summary(trials, result, problem))
    return result
