"""``lossbench gate`` (is the candidate no worse than the baseline?) and ``lossbench calibrate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from lossbench.cli.console import make_console
from lossbench.cli.errors import user_errors
from lossbench.cli.output import OutputFormat, render, write_text
from lossbench.errors import UserError


class GateMode(str, Enum):
    stat = "stat"
    exact = "exact"


def gate_command(
    baseline: Annotated[
        list[str],
        typer.Option(
            "--baseline",
            "-b",
            help="Baseline results: files, globs or directories (repeatable).",
            show_default=False,
        ),
    ],
    candidate: Annotated[
        list[str],
        typer.Option(
            "--candidate",
            "-c",
            help="Candidate results: files, globs or directories (repeatable).",
            show_default=False,
        ),
    ],
    mode: Annotated[
        GateMode,
        typer.Option(
            "--mode",
            help="stat: paired non-inferiority per (dataset, loss); exact: every trial within atol/rtol.",
        ),
    ] = GateMode.stat,
    metric: Annotated[
        str | None, typer.Option("--metric", "-m", help="Metric to gate (default: primary).")
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="σ_AA file from `lossbench calibrate`; margin δ = max(0.005, 3·σ_AA). Without it "
            "δ = 0.01 absolute (2% relative for unbounded metrics).",
        ),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0001, max=0.5, help="Family-wise error rate (Holm).")
    ] = 0.05,
    atol: Annotated[float, typer.Option("--atol", min=0.0, help="exact mode: absolute tolerance.")] = 1e-6,
    rtol: Annotated[float, typer.Option("--rtol", min=0.0, help="exact mode: relative tolerance.")] = 1e-5,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 5 when any cell is INCONCLUSIVE.")] = False,
    max_missing: Annotated[
        int,
        typer.Option(
            "--max-missing", min=0, help="Baseline trials allowed to lack a candidate trial before exit 3."
        ),
    ] = 0,
    max_failed: Annotated[
        int,
        typer.Option(
            "--max-failed",
            min=0,
            help="Candidate trials allowed to fail (failed, timeout, oom, crashed; not diverged) before exit 4.",
        ),
    ] = 0,
    until_conclusive: Annotated[
        bool,
        typer.Option(
            "--until-conclusive",
            help="Before deciding, run the candidate's undecided cells on more of the baseline's seeds (up to "
            "--max-seeds), judging each by the sequential rule (docs/compare.md#adaptive-seeding).",
        ),
    ] = False,
    max_seeds: Annotated[
        int, typer.Option("--max-seeds", min=2, max=10_000, help="--until-conclusive: most seeds per cell.")
    ] = 20,
    n_jobs: Annotated[
        int, typer.Option("--n-jobs", "-j", min=1, max=1024, help="--until-conclusive: worker processes.")
    ] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the verdict as JSON here.")] = None,
    github_summary: Annotated[
        Path | None,
        typer.Option(
            "--github-summary", help='Append a Markdown summary here (e.g. "$GITHUB_STEP_SUMMARY").'
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Terminal output format.")
    ] = OutputFormat.rich,
) -> None:
    """Gate a candidate run against a baseline: each (dataset, loss) cell is PASS, REGRESSION or INCONCLUSIVE
    (paired by seed, one-sided tests with Holm across cells, plus a suite-level Wilcoxon check per loss);
    a cell with no judged seed is FAILED, MISSING or NO BASELINE, and stays in the table.

    Exit codes: 0 pass (inconclusive allowed); 1 regression (or CHANGED in exact mode); 2 usage error;
    3 not comparable (schema, suite version, configuration, protocol, data hash or loss version differ, or
    cells missing); 4 more candidate trials failed than --max-failed allows (default 0), or none could be
    judged; 5 inconclusive under --strict.

    With --until-conclusive the candidate must be one `lossbench run` folder: cells the sequential rule
    leaves open are run on more seeds (those the baseline has) into that folder, with the suite and settings
    its manifest recorded, and their verdicts come from that rule.

    Example: lossbench gate --baseline main-results/ --candidate pr-results/ --calibration calibration.json
    --json verdict.json --github-summary "$GITHUB_STEP_SUMMARY"
    """
    from lossbench.gate import run_gate
    from lossbench.report import tables

    console = make_console()
    with user_errors():
        try:
            if until_conclusive:
                result = grown(baseline, candidate, mode.value, metric, max_seeds, alpha, n_jobs, strict,
                               max_failed, console, output_format == OutputFormat.rich,
                               lambda base, cand: run_gate(
                                   base, cand, mode=mode.value, metric=metric, calibration=calibration,
                                   alpha=alpha, atol=atol, rtol=rtol, strict=strict, max_missing=max_missing,
                                   max_failed=max_failed))
            else:
                result = run_gate(
                    baseline,
                    candidate,
                    mode=mode.value,
                    metric=metric,
                    calibration=calibration,
                    alpha=alpha,
                    atol=atol,
                    rtol=rtol,
                    strict=strict,
                    max_missing=max_missing,
                    max_failed=max_failed,
                )
        except UserError as exc:
            # CI still gets a machine-readable verdict when the gate cannot judge
            outcome = {3: "INCOMPARABLE", 4: "INFRASTRUCTURE_FAILURE"}.get(exc.exit_code, "ERROR")
            if json_out is not None:
                write_text(
                    json_out,
                    json.dumps(
                        {
                            "outcome": outcome,
                            "exit_code": exc.exit_code,
                            "message": exc.message,
                            "hint": exc.hint,
                        },
                        indent=2,
                    ),
                )
            if github_summary is not None:
                write_text(
                    github_summary,
                    f"## ❌ lossbench gate: {outcome}\n\n{exc.message}\n\n{exc.hint or ''}\n",
                    append=True,
                )
            raise
        render(result, output_format, tables.gate_tables, {
            OutputFormat.json: tables.gate_to_json,
            OutputFormat.markdown: tables.gate_to_markdown,
            OutputFormat.csv: tables.gate_to_csv,
        }, None, console)
        if json_out is not None:
            write_text(json_out, tables.gate_to_json(result))
        if github_summary is not None:
            write_text(github_summary, tables.gate_to_markdown(result), append=True)
    raise typer.Exit(result.exit_code)


def grown(baseline: list[str], candidate: list[str], mode: str, metric: str | None, max_seeds: int,
          alpha: float, n_jobs: int, strict: bool, max_failed: int, console: Any, show: bool,
          gate: Callable[[Any, Any], Any]) -> Any:
    """--until-conclusive: gate on the seeds both sides have, grow the candidate's open cells on the baseline's
    further seeds, gate again, and take the cells' verdicts from the sequential rule (the p-values shown stay
    those of the fixed-n tests on every seed, for reference)."""
    from lossbench import sequential
    from lossbench.adaptive import grow_candidate
    from lossbench.gate import INCONCLUSIVE, PASS, REGRESSION, _outcome
    from lossbench.results import load_trials
    from lossbench.store import ResultStore

    if mode != "stat":
        raise UserError("--until-conclusive needs --mode stat.", "Leave out --mode exact.")
    if len(candidate) != 1 or not (Path(candidate[0]) / "manifest.json").is_file():
        raise UserError("--until-conclusive needs the candidate as one `lossbench run` results folder.",
                        "Pass that run's --out folder once with --candidate.")
    base = load_trials(baseline)

    def gate_tried() -> Any:  # the baseline's seeds beyond the candidate's are the reserve, not missing trials
        cand = load_trials(candidate)
        return gate(base[base["seed"].isin(set(cand["seed"]))], cand)

    result = gate_tried()
    judged = result.cells[result.cells["verdict"].isin([PASS, REGRESSION, INCONCLUSIVE])]
    margins = {(r.dataset, r.loss): float(r.delta) for r in judged.itertuples()}

    def progress(round_no: int, decisions: Any) -> None:
        more = sum(len(c.next_seeds) for c in decisions)
        if show and more:
            console.print(f"gate round {round_no + 1}: {more} more candidate trials for "
                          f"{sum(1 for c in decisions if c.next_seeds)} open cells", highlight=False)

    decisions = grow_candidate(baseline, ResultStore(candidate[0]), margins, metric, max_seeds, alpha, n_jobs,
                               progress)
    result = gate_tried()
    verdict = {sequential.PASS: PASS, sequential.REGRESSION: REGRESSION}
    by_cell = {(c.dataset, c.loss): verdict.get(c.verdict, INCONCLUSIVE) for c in decisions}
    cells = result.cells.copy()
    cells["verdict"] = [by_cell.get((r.dataset, r.loss), r.verdict) for r in cells.itertuples()]
    result.cells = cells
    result.outcome, result.exit_code = _outcome(cells, result.suite, strict, result.n_candidate_failed, max_failed)
    result.notes.append(f"--until-conclusive: cell verdicts from the sequential rule (up to {max_seeds} seeds, "
                        "docs/compare.md#adaptive-seeding); the p-values are the fixed-n tests, for reference.")
    return result


def calibrate_command(
    run_a: Annotated[
        str, typer.Argument(help="First A/A run: results directory, file or glob.", show_default=False)
    ],
    run_b: Annotated[
        str, typer.Argument(help="Second A/A run of the same code and suite.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration JSON to write.")] = Path(
        "calibration.json"
    ),
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="Metrics to calibrate (repeatable). Default: the primary and every m_<name> column.",
        ),
    ] = None,
) -> None:
    """Measure seed-to-seed noise σ_AA per metric from two runs of the same code (an A/A pair) and write the
    JSON file that `lossbench gate --calibration` reads (margin δ = max(0.005, 3·σ_AA)).

    Exit codes: 0 written; 2 usage error or unreadable input (the same results twice); 3 the runs are not an
    A/A pair (suite, configuration, data or loss versions differ, or the same seeds gave identical values:
    run the second one with `lossbench run --seed-offset N`).

    Example: lossbench calibrate results-a/ results-b/ --out calibration.json
    """
    from lossbench.gate import calibrate, write_calibration

    console = make_console()
    with user_errors():
        data = calibrate([run_a], [run_b], metrics=metric or None)
        data["sources"] = [str(run_a), str(run_b)]
        path = write_calibration(data, out)
        for name, entry in data["metrics"].items():
            sigma = entry["sigma_aa"]
            console.print(
                f"{name}: σ_AA = {'–' if sigma is None else f'{sigma:.5f}'} "
                f"({entry['n_pairs']} pairs, {entry['n_cells']} cells)",
                highlight=False,
            )
        console.print(f"[dim]wrote {path}[/]", highlight=False)
