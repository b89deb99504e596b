"""`lossbench run`: train every loss of a suite over seeds and datasets, in parallel workers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lossbench.backends import BackendConfig
from lossbench.cli.console import console
from lossbench.cli.errors import handles_errors
from lossbench.errors import UserError
from lossbench.plugins import load_plugins
from lossbench.provenance import resolve_device
from lossbench.report.summary import print_summary
from lossbench.runner import plan, run
from lossbench.store import ResultStore
from lossbench.suite import MAX_SEEDS, load_suite
from lossbench.trial import TrialResult


@handles_errors
def run_command(
    suite: Annotated[str, typer.Option("--suite", "-s", help="Suite name (see `lossbench list suites`) or path "
                                       "to a .toml suite file.")] = "quickstart",
    loss: Annotated[list[str] | None, typer.Option("--loss", "-l", help="Loss or method spec, repeatable: "
                                                   "NAME or NAME:key=value,... Default: the suite's losses.")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", "-d", help="Dataset URI, repeatable, e.g. "
                                                      "csv:data.csv#target=label. Default: the suite's datasets.")]
    = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="Number of seeds (0..N-1). Default: the suite's.")]
    = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", "-j", help="Parallel worker processes.")] = 1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Results directory. Default: results/<suite>.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the trial grid and exit without training.")]
    = False,
    rerun: Annotated[str, typer.Option("--rerun", help="Resume skips recorded trials; 'failed' reruns those "
                                       "not ok, 'all' reruns everything.")] = "none",
    trial_timeout: Annotated[float | None, typer.Option("--trial-timeout", help="Seconds before a trial is "
                                                        "stopped and recorded as 'timeout'.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option("--threads", help="Torch/BLAS threads per worker.")] = 1,
    backend: Annotated[str, typer.Option("--backend", help="loky (processes on this machine) or dask.")] = "loky",
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="dask scheduler address, e.g. "
                                                  "tcp://host:8786. Default: a local cluster of --n-jobs workers.")]
    = None,
    retries: Annotated[int, typer.Option("--retries", help="dask: resubmit a trial whose worker died.")] = 0,
    vectorize_seeds: Annotated[bool, typer.Option("--vectorize-seeds", help="Train all seeds of a (dataset, loss) "
                                                  "cell as one stacked MLP where the loss and method allow it "
                                                  "(same results; see docs/performance.md).")] = False,
    plugin: Annotated[list[str] | None, typer.Option("--plugin", help="Import this module or .py file first "
                                                     "(repeatable); it may register extra losses or methods.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    openml_cache: Annotated[Path | None, typer.Option("--openml-cache", help="OpenML cache root holding "
                                                      "org/openml/www/datasets/<id>/ (sets OPENML_CACHE_DIR); "
                                                      "openml: datasets load offline from it.")] = None,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Directory holding official image files "
                                                   "(MNIST IDX, CIFAR batches) for images: URIs; sets "
                                                   "LOSSBENCH_DATA_ROOT.")] = None,
) -> None:
    """Run a benchmark suite and write one Parquet row per trial.

    Rerunning the same command resumes: finished trials are skipped.

    Examples:

      lossbench run

      lossbench run --suite imbalanced --loss anyloss-f1 --loss ce --seeds 5 --n-jobs 2 --out results/

      lossbench run --dataset csv:data.csv#target=label --loss focal:gamma=1 --dry-run
    """
    if seeds is not None and seeds < 1:
        raise UserError(f"--seeds must be at least 1; got {seeds}.", "Pass --seeds 3 for three seeds.")
    if seeds is not None and seeds > MAX_SEEDS:
        raise UserError(f"--seeds must be at most {MAX_SEEDS:,}; got {seeds}.", "Pass a smaller number of seeds.")
    if n_jobs < 1:
        raise UserError(f"--n-jobs must be at least 1; got {n_jobs}.")
    if threads < 1:
        raise UserError(f"--threads must be at least 1; got {threads}.")
    if trial_timeout is not None and trial_timeout <= 0:
        raise UserError(f"--trial-timeout must be positive; got {trial_timeout}.")
    load_plugins(plugin or [])
    resolved_device = resolve_device(device)
    # Under dask, a GPU trial asks for one unit of the workers' GPU resource: one trial per GPU at a time.
    backend_config = BackendConfig(backend, n_jobs, scheduler, retries, threads,
                                   gpu=resolved_device.startswith("cuda")).validate()
    if openml_cache is not None:
        if not openml_cache.expanduser().is_dir():
            raise UserError(f"--openml-cache {str(openml_cache)!r} is not a directory.",
                            "Pass the folder that contains org/openml/www/datasets/.")
        # Set before planning: the driver loads every dataset, and worker processes inherit the variable.
        os.environ["OPENML_CACHE_DIR"] = str(openml_cache.expanduser().resolve())
    if data_root is not None:
        # read by images: URIs without root=; local workers inherit the environment
        os.environ["LOSSBENCH_DATA_ROOT"] = str(data_root.expanduser())
    the_suite = load_suite(suite)
    out_dir = out if out is not None else Path("results") / the_suite.name
    store = ResultStore(out_dir)
    if not dry_run:
        store.open_for_writing()  # an unwritable --out fails before any trial runs
    elif store.root.exists():
        store.check_schema()
    the_plan = plan(
        store, the_suite, rerun=rerun, losses=loss, datasets=dataset,
        seeds=range(seeds) if seeds is not None else None, trial_timeout=trial_timeout,
        device=resolved_device, threads=threads,
        plugins=[str(Path(p).resolve()) if p.endswith(".py") else p for p in plugin or []],
    )
    if dry_run:
        print_grid(the_plan.trials, {t.trial_id for t in the_plan.pending})
        return
    if not quiet:
        console.print(
            f"[bold]{the_suite.name}[/bold] v{the_suite.version}: {len(the_plan.trials)} trials, "
            f"{len(the_plan.pending)} to run, {the_plan.skipped_done} already done (skipped) → {out_dir}"
        )
    options = {"n_jobs": n_jobs, "backend": backend, "scheduler": scheduler, "retries": retries,
               "rerun": rerun, "trial_timeout": trial_timeout, "device": device,
               "threads": threads, "vectorize_seeds": vectorize_seeds, "losses": loss, "datasets": dataset,
               "seeds": seeds, "openml_cache": str(openml_cache) if openml_cache is not None else None,
               "data_root": str(data_root) if data_root is not None else None}
    failures = 0
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[failed]}"),
        console=console, disable=quiet or not console.is_terminal, transient=False,
    )
    with progress:
        task = progress.add_task("trials", total=len(the_plan.pending), failed="")

        def on_result(result: TrialResult) -> None:
            nonlocal failures
            if result.status not in ("ok", "skipped"):
                failures += 1
                if not quiet:
                    msg = str(result.row.get("error_msg") or "").splitlines()
                    progress.console.print(
                        f"[red]{result.status}[/red] {result.row['dataset']} {result.row['loss']} "
                        f"seed {result.row['seed']}: {msg[0][:120] if msg else ''}"
                    )
            progress.update(task, advance=1, failed=f"[red]{failures} failed[/red]" if failures else "")

        run(store, the_plan, backend=backend_config, options=options, on_result=on_result,
            vectorize_seeds=vectorize_seeds)
    if not quiet:
        trials = store.read_trials()
        keep = {t.trial_id for t in the_plan.trials}
        print_summary(trials[trials["trial_id"].isin(keep)], console)
        console.print(f"Results: {out_dir}  (open with `lossbench report {out_dir}` or pandas.read_parquet)")


def print_grid(trials: list, pending: set[str]) -> None:
    table = Table(title=f"{len(trials)} trials ({len(pending)} to run)", title_justify="left")
    for col in ("trial_id", "dataset", "loss", "seed", "state"):
        table.add_column(col)
    for t in trials:
        table.add_row(t.trial_id, t.dataset, t.loss, str(t.seed), "pending" if t.trial_id in pending else "done")
    console.print(table)
