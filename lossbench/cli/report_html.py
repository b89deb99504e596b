"""The HTML page behind ``lossbench report RESULTS --html out.html``."""

from __future__ import annotations

from pathlib import Path

from lossbench.compare import compare, load_curves, load_examples, load_trials
from lossbench.report.html import write_report


def write_html_report(
    results_dir: str | Path,
    out_path: str | Path,
    metric: str | None = None,
    baseline: str | None = None,
    on_missing: str = "drop",
    inline_svg: bool = False,
) -> Path:
    """Compare the losses in ``results_dir`` and write one self-contained HTML page to ``out_path``.

    Raises lossbench.errors.UserError subclasses (rendered by the CLI). Plots need lossbench[plots];
    without matplotlib the page holds the tables and says why the plots are missing.

    Example: write_html_report("results/", "report.html")
    """
    trials = load_trials([results_dir])
    result = compare(trials, metric=metric, baseline=baseline, on_missing=on_missing)
    curves = load_curves([results_dir])
    return write_report(
        result,
        trials,
        curves,
        out_path,
        title=f"lossbench report: {Path(results_dir).name}",
        inline_svg=inline_svg,
        examples=load_examples([results_dir]),
    )
