"""``lossbench compare``: paired statistics of losses over seeds and datasets."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

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
        typer.Argument(help="Result files, globs or results directories (any mix).", show_default=False),
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
            help="Reference loss for paired differences. Default: 'ce' if present, else the first.",
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
            "segmentation results stored them; needs lossbench[plots].",
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    confidence: Annotated[float, typer.Option("--confidence", min=0.5, max=0.999, help="CI level.")] = 0.95,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")] = 0,
) -> None:
    """Compare losses per dataset (mean ± CI, 95% unless --confidence; paired Δ to the baseline with a
    bootstrap CI, P(better), Cliff's δ) and across datasets (average ranks, Friedman / Iman–Davenport,
    pairwise Wilcoxon + Holm, win/tie/loss within a practical-equivalence margin).

    Exit codes: 0 done; 2 usage error or unreadable input; 3 results not comparable (schema version, or
    missing cells under --on-missing error).

    Example: lossbench compare results/ --metric auroc --baseline ce --format markdown -o compare.md
    """
    from lossbench.compare import compare, load_curves, load_examples, load_trials
    from lossbench.report import tables

    console = make_console()
    with user_errors():
        trials = load_trials(results)
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
                console.print(f"[dim]wrote {len(written)} plot files to {plots}[/]", highlight=False)
            if html is not None:
                from lossbench.report.html import write_report

                write_report(result, trials, curves, html, examples=examples)
                console.print(f"[dim]wrote {html}[/]", highlight=False)
