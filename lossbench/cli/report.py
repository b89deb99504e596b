"""`lossbench report`: print the summary of results again, optionally as one HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors


@handles_errors
def report_command(
    results: Annotated[
        list[str],
        typer.Argument(
            help="Results: a folder written by `lossbench run`, a folder of such folders, trial files or globs "
            "(any mix, as for compare).",
            show_default=False,
        ),
    ],
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="Metric to summarise. Default: the "
                                               "suite's primary metric.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write one self-contained HTML page (tables and "
                                              "plots embedded) to this path.")] = None,
) -> None:
    """Print the summary tables (mean [95% CI] per dataset and loss, average ranks with the paired evidence
    against the baseline, failures). The numbers are those of `lossbench compare`.

    Exit codes: 0 done; 2 usage error or unreadable input; 3 results not comparable (schema version).

    Example:

      lossbench report results/quickstart --metric auroc

      lossbench report results/quickstart --html report.html
    """
    from lossbench.compare import compare
    from lossbench.report.summary import render_summary
    from lossbench.results import label_sets, load_trials

    trials = label_sets(load_trials(results))
    result = compare(trials, metric=metric)
    console.print(render_summary(trials, result))
    if html is not None:
        from lossbench.cli.report_html import write_html_report
        from lossbench.report.plots import PLOTS_MISSING, plots_available

        written = write_html_report(results, html, metric=metric)
        note = "" if plots_available() else f" ({PLOTS_MISSING})"
        console.print(escape(f"HTML report: {written}{note}"))
