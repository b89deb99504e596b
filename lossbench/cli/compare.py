"""``lossbench compare``: paired statistics of losses over seeds and datasets."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lossbench.cli.console import make_console
from lossbench.cli.errors import user_errors
from lossbench.cli.output import OutputFormat, render


class OnMissing(str, Enum):
    drop = "drop"
    error = "error"
    impute_worst = "impute-worst"


def compare_command(
    results: Annotated[
        list[str],
        typer.Argument(
            help="Results: a folder written by `lossbench run`, a folder of such folders, trial .parquet files, "
            "or globs of them (any mix, any level).",
            show_default=False,
        ),
    ],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            "-m",
            help="Metric to compare. Default: the trials' primary metric; else an m_<name> column.",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            "-b",
            help="Reference loss for paired differences. Default: 'ce' if present, else 'retrain' (unlearning), "
            "else the first.",
        ),
    ] = None,
    on_missing: Annotated[
        OnMissing,
        typer.Option(
            "--on-missing",
            help="Cells one loss has and another lacks: drop the (dataset, seed), error (exit 3), "
            "or impute the dataset's worst value. The count is shown next to every aggregate.",
        ),
    ] = OnMissing.drop,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.rich,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the json/markdown/csv output to this file.")
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            help="Also write plots (PNG and SVG) into this folder, with example predictions per dataset when "
            "segmentation results stored them; needs lossbench\\[plots].",
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.999, help="CI level.")] = 0.95,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")] = 0,
) -> None:
    """Compare losses per dataset (mean and CI, 95% unless --confidence, inside the metric's range; paired Δ
    to the baseline with its CI, P(better) with a credible interval, Cliff's δ, exact Wilcoxon p) and across
    datasets (average ranks, Friedman / Iman–Davenport, pairwise Wilcoxon + Holm, win/tie/loss within a
    practical-equivalence margin). Trials of different suites, suite versions, configurations or protocols
    are never pooled: each dataset is labelled with its set.

    Exit codes: 0 done; 2 usage error or unreadable input; 3 results not comparable (schema version, or
    missing cells under --on-missing error).

    Examples: lossbench compare results/ --metric auroc --baseline ce --format markdown -o compare.md

      lossbench compare results/quickstart 'results/*/trials/*.parquet'
    """
    from lossbench.compare import compare
    from lossbench.report import tables
    from lossbench.results import label_sets, load_curves, load_examples, load_trials

    console = make_console()
    with user_errors():
        trials = label_sets(load_trials(results))
        result = compare(
            trials,
            metric=metric,
            baseline=baseline,
            on_missing=on_missing.value,
            confidence=confidence,
            n_resamples=resamples,
            seed=seed,
        )
        render(result, output_format, tables.compare_tables, {
            OutputFormat.json: tables.compare_to_json,
            OutputFormat.markdown: tables.compare_to_markdown,
            OutputFormat.csv: tables.compare_to_csv,
        }, out, console)
        if plots is not None or html is not None:
            curves = load_curves(results)
            examples = load_examples(results)  # segmentation runs store a few test predictions per trial
            if plots is not None:
                from lossbench.report.plots import all_plots

                written = all_plots(result, trials, curves, plots, examples=examples)
                n_files = sum(len(paths) for paths in written.values())
                console.print(
                    f"[dim]wrote {n_files} plot files ({len(written)} plots, PNG and SVG) to {escape(str(plots))}[/]",
                    highlight=False,
                )
            if html is not None:
                from lossbench.report.html import write_report
                from lossbench.report.plots import PLOTS_MISSING, plots_available

                write_report(result, trials, curves, html, examples=examples)
                extra = "" if plots_available() else f" ({escape(PLOTS_MISSING)})"
                console.print(f"[dim]wrote {escape(str(html))}{extra}[/]", highlight=False)
