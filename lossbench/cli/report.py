"""`lossbench report`: print the summary of a results directory again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors
from lossbench.errors import ResultsError
from lossbench.report.summary import print_summary
from lossbench.store import ResultStore


@handles_errors
def report_command(
    results: Annotated[Path, typer.Argument(help="A results directory written by `lossbench run`.")],
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="Metric to summarise. Default: the "
                                               "suite's primary metric.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write one self-contained HTML page (tables and "
                                              "plots embedded) to this path.")] = None,
) -> None:
    """Print the summary tables (mean ± 95% CI, average ranks, failures) of a results directory.

    Example:

      lossbench report results/quickstart --metric auroc

      lossbench report results/quickstart --html report.html
    """
    store = ResultStore(results)
    if not store.trials_dir.is_dir():
        raise ResultsError(f"{str(results)!r} holds no lossbench results.", "Pass the --out of a `lossbench run`.")
    trials = store.read_trials()
    if metric is not None and metric != trials["metric"].iloc[0] and f"m_{metric}" not in trials:
        available = sorted(c[2:] for c in trials.columns if c.startswith("m_"))
        raise ResultsError(f"No metric {metric!r} in {str(results)!r}.", f"Available: {', '.join(available)}.")
    print_summary(trials, console, metric)
    if html is not None:
        from lossbench.cli.report_html import write_html_report

        written = write_html_report(results, html, metric=metric)
        console.print(f"HTML report: {written}")
