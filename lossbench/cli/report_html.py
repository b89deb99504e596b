"""The HTML page behind ``lossbench report RESULTS --html out.html``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lossbench.compare import compare
from lossbench.report.html import write_report
from lossbench.results import label_sets, load_curves, load_examples, load_trials


def write_html_report(
    results: str | Path | Sequence[str | Path],
    out_path: str | Path,
    metric: str | None = None,
    baseline: str | None = None,
    on_missing: str = "drop",
    inline_svg: bool = False,
) -> Path:
    """Compare the losses in ``results`` (any input form of ``compare``) and write one self-contained page.

    Raises lossbench.errors.UserError subclasses (rendered by the CLI). Plots need lossbench[plots];
    without matplotlib the page holds the tables and says why the plots are missing.

    Example: write_html_report("results/", "report.html")
    """
    inputs = [results] if isinstance(results, (str, Path)) else list(results)
    trials = label_sets(load_trials(inputs))
    result = compare(trials, metric=metric, baseline=baseline, on_missing=on_missing)
    name = Path(inputs[0]).name if len(inputs) == 1 else f"{len(inputs)} inputs"
    return write_report(
        result,
        trials,
        load_curves(inputs),
        out_path,
        title=f"lossbench report: {name}",
        inline_svg=inline_svg,
        examples=load_examples(inputs),
    )
