"""`lossbench run`: train every loss of a suite over seeds and datasets, in parallel workers."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from lossbench.cli.console import console, data_notes
from lossbench.cli.errors import handles_errors
from lossbench.suite import MAX_SEEDS

#: `lossbench run` exit codes besides 0 and the errors' 2 and 3 (docs/cli.md).
EXIT_TRIALS_FAILED = 4  # a trial of the grid is failed, crashed, timeout or oom
EXIT_NOTHING_RAN = 6  # no trial of the grid produced a result: every one was skipped
EXIT_INTERRUPTED = 130  # Ctrl-C; what was written is kept and the same command resumes
#: Statuses that are infrastructure failures; ``diverged`` is a result of the loss, ``skipped`` a non-applicable one.
INFRASTRUCTURE_FAILURES = frozenset({"failed", "crashed", "timeout", "oom"})
MAX_SEED_OFFSET = 1_000_000_000  # seeds also seed NumPy and scikit-learn, which take values below 2**32


class Rerun(str, Enum):
    none = "none"
    failed = "failed"
    all = "all"


class Backend(str, Enum):
    loky = "loky"
    dask = "dask"


def workers(value: int | None) -> int | None:
    if value == 0:
        raise typer.BadParameter("0 workers cannot run a trial; use 1 or more, or -1 for every core.")
    return value


def resolve_n_jobs(n_jobs: int | None) -> int:
    """joblib's convention: -1 every core, -2 all but one, ...; None is one worker."""
    if n_jobs is None:
        return 1
    if n_jobs > 0:
        return n_jobs
    from joblib import cpu_count

    return max(cpu_count() + 1 + n_jobs, 1)


def seed_list(suite_seeds: Sequence[int], seeds: int | None, offset: int) -> list[int] | None:
    """The seeds of a command: ``offset .. offset+seeds-1``, or the suite's shifted by ``offset``; None: the suite's."""
    if seeds is not None:
        return list(range(offset, offset + seeds))
    return [s + offset for s in suite_seeds] if offset else None


def own_data(suite_datasets: Sequence[str], datasets: Sequence[str] | None) -> list[str]:
    """The datasets given with --dataset that are not the suite's (canonical URIs)."""
    from lossbench.specs import DatasetURI

    ours = {str(DatasetURI.parse(d)) for d in suite_datasets}
    return [uri for uri in (str(DatasetURI.parse(d)) for d in datasets or ()) if uri not in ours]


def data_name(uri: str) -> str:
    """A plain folder name for a dataset URI: ``csv:data/f.csv.gz#target=y`` → ``f``, ``openml:310`` → ``openml-310``."""
    from lossbench.specs import DatasetURI

    parsed = DatasetURI.parse(uri)
    if parsed.scheme in ("csv", "parquet"):
        name = Path(parsed.location).name.split(".")[0]
    else:
        name = f"{parsed.scheme}-{parsed.location}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or parsed.scheme


def default_out(suite_name: str, own: Sequence[str]) -> Path:
    """results/<suite>, or for data of one's own, a folder named after it: never the suite's folder."""
    if not own:
        return Path("results") / suite_name
    names = list(dict.fromkeys(data_name(uri) for uri in own))
    label = "+".join(names[:3]) + (f"+{len(names) - 3}-more" if len(names) > 3 else "")
    return Path("results") / label


@handles_errors
def run_command(
    suite: Annotated[str, typer.Option("--suite", "-s", help="Suite name (see `lossbench list suites`) or path "
                                       "to a .toml suite file.")] = "quickstart",
    loss: Annotated[list[str] | None, typer.Option("--loss", "-l", help="Loss or method spec, repeatable: "
                                                   "NAME or NAME:key=value,... Default: the suite's losses.")] = None,
    dataset: Annotated[list[str] | None, typer.Option("--dataset", "-d", help="Dataset URI, repeatable, e.g. "
                                                      "csv:data.csv#target=label. Default: the suite's datasets; "
                                                      "the suite's model and training settings apply.")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", min=1, max=MAX_SEEDS, help="Number of seeds. Default: "
                                              "the suite's.")] = None,
    seed_offset: Annotated[int, typer.Option("--seed-offset", min=0, max=MAX_SEED_OFFSET, help="First seed: "
                                             "seeds N..N+k-1 with --seeds k (the suite's seeds shifted by N "
                                             "without it), e.g. for a second A/A calibration run.")] = 0,
    n_jobs: Annotated[int | None, typer.Option("--n-jobs", "-j", callback=workers, show_default="1",
                                               help="Parallel worker processes; -1 every core, -2 all but one "
                                               "(as in joblib).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Results directory. Default: results/<suite>, "
                                             "or results/<data name> for --dataset data outside the suite.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the trial grid and exit without training.")]
    = False,
    rerun: Annotated[Rerun, typer.Option("--rerun", help="none: resume, skipping recorded trials; failed: rerun "
                                         "those not ok or skipped; all: rerun everything.")] = Rerun.none,
    trial_timeout: Annotated[float | None, typer.Option("--trial-timeout", min=1, max=10_000_000, help="Seconds "
                                                        "before a trial is stopped and recorded as 'timeout'.")]
    = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option("--threads", min=1, max=1024, help="Torch/BLAS threads per worker.")] = 1,
    backend: Annotated[Backend, typer.Option("--backend", help="loky (processes on this machine) or dask.")]
    = Backend.loky,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="dask scheduler address, e.g. "
                                                  "tcp://host:8786; its workers run the trials. Default: a local "
                                                  "cluster of --n-jobs workers.")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, max=100, help="dask: resubmit a trial whose worker "
                                         "died.")] = 0,
    vectorize: Annotated[bool, typer.Option("--vectorize/--no-vectorize", help="Train the losses and seeds of each "
                                            "dataset as one stacked MLP where the model, loss and method allow it "
                                            "(same results; see docs/performance.md). --no-vectorize: one trial at "
                                            "a time.")] = True,
    vectorize_seeds: Annotated[bool, typer.Option("--vectorize-seeds", hidden=True,
                                                  help="Deprecated: vectorisation is the default.")] = False,
    plugin: Annotated[list[str] | None, typer.Option("--plugin", help="Import this module or .py file first "
                                                     "(repeatable); it may register extra losses or methods.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    progress_every: Annotated[float, typer.Option("--progress-every", min=1, max=86400, help="When output is not "
                                                  "a terminal (CI logs): seconds between plain progress lines.")]
    = 30.0,
    until_conclusive: Annotated[bool, typer.Option("--until-conclusive", help="Adaptive seeding: after each "
                                                   "round, judge every (dataset, loss) against --baseline and "
                                                   "add seeds only where the verdict is open, up to --max-seeds "
                                                   "(docs/compare.md#adaptive-seeding).")] = False,
    baseline: Annotated[str | None, typer.Option("--baseline", "-b", help="--until-conclusive: the loss every "
                                                 "other loss is compared with; one of the run's losses.")] = None,
    max_seeds: Annotated[int, typer.Option("--max-seeds", min=2, max=MAX_SEEDS, help="--until-conclusive: "
                                           "most seeds a cell may reach.")] = 20,
    margin: Annotated[float | None, typer.Option("--margin", help="--until-conclusive: smallest difference in "
                                                 "the primary metric that matters; within it, equivalent. "
                                                 "Default 0.01 for a metric in [0, 1].")] = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="--until-conclusive: chance of "
                                         "any false verdict over all cells and looks.")] = 0.05,
    looks: Annotated[str | None, typer.Option("--looks", help="--until-conclusive: seed counts at which cells "
                                              "are judged, e.g. 5,8,13,20 (from the starting seeds to "
                                              "--max-seeds). Default: each about 1.6 × the previous.")] = None,
    openml_cache: Annotated[Path | None, typer.Option("--openml-cache", help="OpenML cache root holding "
                                                      "org/openml/www/datasets/<id>/ (sets OPENML_CACHE_DIR); "
                                                      "openml: datasets load offline from it.")] = None,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Directory holding official image files "
                                                   "(MNIST IDX, CIFAR batches) for images: URIs; sets "
                                                   "LOSSBENCH_DATA_ROOT.")] = None,
) -> None:
    """Run a benchmark suite and write one Parquet row per trial.

    Rerunning the same command resumes: finished trials are skipped. Exit codes: 0 every trial has a result
    (ok or diverged) or was skipped; 2 bad input; 3 incompatible results folder; 4 some trials failed,
    crashed, timed out or ran out of memory; 6 nothing ran (every trial skipped); 130 interrupted.

    With --until-conclusive, the run goes in rounds: after each, every (dataset, loss) cell is judged
    against --baseline with a group-sequential rule, and only open cells get more seeds; rerunning the
    same command continues the sequence.

    Examples:

      lossbench run

      lossbench run --suite imbalanced --loss anyloss-f1 --loss ce --seeds 5 --n-jobs 2 --out results/

      lossbench run --dataset csv:data.csv#target=label --loss focal:gamma=1 --dry-run

      lossbench run --suite imbalanced --baseline ce --until-conclusive --max-seeds 20
    """
    vectorize = vectorize or vectorize_seeds  # the old flag, from when vectorisation was opt-in
    from rich.markup import escape

    from lossbench.backends import BackendConfig
    from lossbench.plugins import load_plugins
    from lossbench.provenance import resolve_device
    from lossbench.runner import plan, warm_workers
    from lossbench.store import ResultStore
    from lossbench.suite import load_suite

    if openml_cache is not None:
        if not openml_cache.expanduser().is_dir():
            from lossbench.errors import UserError

            raise UserError(f"--openml-cache {str(openml_cache)!r} is not a directory.",
                            "Pass the folder that contains org/openml/www/datasets/.")
        # Set before planning: the driver loads every dataset, and worker processes inherit the variable.
        os.environ["OPENML_CACHE_DIR"] = str(openml_cache.expanduser().resolve())
    if data_root is not None:
        # read by images: URIs without root=; local workers inherit the environment
        os.environ["LOSSBENCH_DATA_ROOT"] = str(data_root.expanduser())
    load_plugins(plugin or [])
    resolved_device = resolve_device(device)
    workers_n = resolve_n_jobs(n_jobs)
    # Under dask, a GPU trial asks for one unit of the workers' GPU resource: one trial per GPU at a time.
    backend_config = BackendConfig(backend.value, workers_n, scheduler, retries, threads,
                                   gpu=resolved_device.startswith("cuda")).validate()
    the_suite = load_suite(suite)
    plugins = [str(Path(p).resolve()) if p.endswith(".py") else p for p in plugin or []]
    warming = None if dry_run else warm_workers(backend_config, resolved_device, plugins)  # while planning
    own = own_data(the_suite.datasets, dataset)
    out_dir = out if out is not None else default_out(the_suite.name, own)
    store = ResultStore(out_dir)
    # Every check before anything is created: a refused command leaves no folder behind.
    if store.root.is_dir():
        store.check_schema()
    if not dry_run:
        store.check_writable()
    store.check_same_experiment(the_suite.resolved())
    seed_values = seed_list(the_suite.seeds, seeds, seed_offset)
    adaptive = adaptive_design(the_suite, loss, seed_values, until_conclusive, baseline, max_seeds, margin,
                               alpha, looks, len(dataset or the_suite.datasets))
    if adaptive is not None:
        raise typer.Exit(run_adaptive(
            store, the_suite, adaptive, seed_values, dataset, out_dir, dry_run, quiet,
            dict(losses=loss, datasets=dataset, trial_timeout=trial_timeout, device=resolved_device,
                 threads=threads, plugins=[str(Path(p).resolve()) if p.endswith(".py") else p for p in plugin or []]),
            dict(n_jobs=workers_n, backend=backend.value, scheduler=scheduler, retries=retries, rerun=rerun.value,
                 trial_timeout=trial_timeout, device=device, threads=threads, vectorize_seeds=vectorize_seeds,
                 losses=loss, datasets=dataset, seeds=seeds, seed_offset=seed_offset,
                 openml_cache=str(openml_cache) if openml_cache is not None else None,
                 data_root=str(data_root) if data_root is not None else None),
            backend_config, vectorize_seeds, progress_every))
    with data_notes(console, quiet):
        the_plan = plan(
            store, the_suite, rerun=rerun.value, losses=loss, datasets=dataset, seeds=seed_values,
            trial_timeout=trial_timeout, device=resolved_device, threads=threads,
            plugins=plugins,
        )
    if scheduler and n_jobs is not None and not quiet:
        console.print(f"[dim]note: --n-jobs {n_jobs} is not used with --scheduler: the cluster's workers run the "
                      "trials (start more workers to run more at once).[/dim]")
    if dry_run:
        print_grid(the_plan.trials, {t.trial_id for t in the_plan.pending})
        return
    if warming is not None:
        warming.join()  # the run's pool is the one it started
    what = (f"{escape(', '.join(own))} (the training settings of suite {the_suite.name} v{the_suite.version})" if own
            else f"[bold]{the_suite.name}[/bold] v{the_suite.version}")
    if not quiet:
        console.print(f"{what}: {len(the_plan.trials)} trials, {len(the_plan.pending)} to run, "
                      f"{the_plan.skipped_done} already done (skipped) → {out_dir}", highlight=False)
    options = {"n_jobs": workers_n, "backend": backend.value, "scheduler": scheduler, "retries": retries,
               "rerun": rerun.value, "trial_timeout": trial_timeout, "device": device,
               "threads": threads, "vectorize": vectorize, "losses": loss, "datasets": dataset,
               "seeds": seeds, "seed_offset": seed_offset,
               "openml_cache": str(openml_cache) if openml_cache is not None else None,
               "data_root": str(data_root) if data_root is not None else None}
    exit_code = execute(store, the_plan, backend_config, options, vectorize, quiet, progress_every)
    raise typer.Exit(exit_code)


def execute(store: Any, the_plan: Any, backend_config: Any, options: dict[str, Any], vectorize: bool,
            quiet: bool, progress_every: float) -> int:
    """Run the plan with progress shown; the exit code says whether every trial of the grid has its result."""
    from lossbench.cli.progress import RunProgress
    from lossbench.report.summary import print_summary
    from lossbench.runner import run

    progress = RunProgress(len(the_plan.pending), console, quiet=quiet, every=progress_every)
    try:
        with progress:
            run(store, the_plan, backend=backend_config, options=options,
                on_result=lambda result: progress.advance(result.row), vectorize=vectorize)
    except KeyboardInterrupt:
        console.print(f"Interrupted: {progress.done} trials of this run were saved in {store.root} "
                      f"({len(the_plan.pending) - progress.done} not run). Rerun the same command to resume.",
                      highlight=False)
        return EXIT_INTERRUPTED
    trials = store.read_trials()
    trials = trials[trials["trial_id"].isin({t.trial_id for t in the_plan.trials})]
    if not quiet:
        print_summary(trials, console)
        console.print(f"Results: {store.root}  (open with `lossbench report {store.root}` or pandas.read_parquet)",
                      highlight=False)
    statuses = set(trials["status"].astype(str))
    if statuses & INFRASTRUCTURE_FAILURES:
        if not quiet:
            console.print("Some trials failed (exit 4): `lossbench status` lists them; "
                          "`--rerun failed` runs them again.", highlight=False)
        return EXIT_TRIALS_FAILED
    if len(trials) and not statuses - {"skipped"}:
        if not quiet:
            console.print("Nothing ran (exit 6): every trial was skipped, because no loss applies to the data "
                          "(see error_msg).", highlight=False)
        return EXIT_NOTHING_RAN
    return 0


def print_grid(trials: list[Any], pending: set[str]) -> None:
    from rich.table import Table

    table = Table(title=f"{len(trials)} trials ({len(pending)} to run)", title_justify="left")
    for col in ("trial_id", "dataset", "loss", "seed", "state"):
        table.add_column(col)
    for t in trials:
        table.add_row(t.trial_id, t.dataset, t.loss, str(t.seed), "pending" if t.trial_id in pending else "done")
    console.print(table)


def adaptive_design(suite: Any, losses: Sequence[str] | None, seed_values: Sequence[int] | None,
                    until_conclusive: bool, baseline: str | None, max_seeds: int, margin: float | None,
                    alpha: float, looks: str | None, n_datasets: int) -> Any:
    """The sequential design of an --until-conclusive run, refused before anything runs; None without it."""
    from lossbench.errors import UserError

    if not until_conclusive:
        if baseline is not None or looks is not None or margin is not None:
            raise UserError("--baseline, --margin and --looks only apply to an adaptive run.",
                            "Add --until-conclusive, or leave them out.")
        return None
    from lossbench import sequential
    from lossbench.adaptive import check_baseline, primary_direction
    from lossbench.runner import resolve_objectives

    names = [str(o) for o in resolve_objectives(suite, losses)]
    base = check_baseline(baseline, names)
    higher, the_margin = primary_direction(suite.primary_metric, margin)
    start = len(seed_values if seed_values is not None else suite.seeds)
    planned = parse_looks(looks) if looks is not None else None
    design = sequential.Design(start=start, max_seeds=max_seeds, margin=the_margin, alpha=alpha,
                               cells=n_datasets * (len(names) - 1), looks=planned)
    return base, higher, design


def parse_looks(text: str) -> tuple[int, ...]:
    from lossbench.errors import UserError

    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--looks {text!r} is not a list of seed counts.", "Write e.g. --looks 5,8,13,20.") from None


def run_adaptive(store: Any, suite: Any, adaptive: Any, seed_values: Sequence[int] | None,
                 datasets: Sequence[str] | None, out_dir: Path, dry_run: bool, quiet: bool,
                 spec_options: dict[str, Any], options: dict[str, Any], backend_config: Any,
                 vectorize_seeds: bool, progress_every: float) -> int:
    """Rounds of --until-conclusive: each one an ordinary run of the open cells' next seeds."""
    from lossbench.adaptive import Grid, check_same_design, seed_sequence, until_conclusive

    baseline, higher, design = adaptive
    check_same_design(store, design, baseline)
    start = list(seed_values if seed_values is not None else suite.seeds)
    with data_notes(console, quiet):
        grid = Grid(suite, seeds=seed_sequence(start, design.max_seeds), **spec_options)
    looks = ", ".join(map(str, design.plan()))
    if not quiet:
        console.print(f"[bold]{suite.name}[/bold] v{suite.version}, until conclusive against {baseline}: "
                      f"{len(grid.datasets)} datasets × {len(grid.losses) - 1} losses, looks at {looks} seeds, "
                      f"margin {design.margin:g}, α {design.alpha:g} over the cells → {out_dir}", highlight=False)
    if dry_run:  # the next round only: later rounds depend on its results
        import pandas as pd

        from lossbench.adaptive import decide_cells

        trials = store.read_trials() if store.root.is_dir() else pd.DataFrame()
        first = decide_cells(trials, grid, baseline, design, higher)
        the_plan = grid.round_plan([c for c in first if c.next_seeds], baseline,
                                   store.completed() if store.root.is_dir() else set())
        print_grid(the_plan.trials, {t.trial_id for t in the_plan.pending})
        return 0

    def one_round(the_plan: Any, extra: Any) -> int:
        return execute(store, the_plan, backend_config, {**options, **extra}, vectorize_seeds, True, progress_every)

    def show(round_no: int, decisions: Any) -> None:
        if quiet:
            return
        counts: dict[str, int] = {}
        for c in decisions:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        more = sum(len(c.next_seeds) for c in decisions)
        when = "before the first round" if round_no == 0 else f"after round {round_no}"
        console.print(f"{when}: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
                      + (f"; {more} more cell-seeds to run" if more else ""), highlight=False)

    decisions, code = until_conclusive(store, grid, baseline, design, higher, one_round, show)
    if not quiet:
        print_decisions(decisions, baseline)
        console.print(f"Results: {store.root}  (decisions in its manifest; `lossbench status {store.root}`)",
                      highlight=False)
    return code


def print_decisions(decisions: Sequence[Any], baseline: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"verdicts against {escape(baseline)}", title_justify="left")
    for col in ("dataset", "loss", "verdict", "seeds", "difference", "interval"):
        table.add_column(col)
    for c in decisions:
        interval = "" if c.verdict == "open" and c.n < 2 else f"[{c.low:+.4f}, {c.high:+.4f}]"
        estimate = f"{c.estimate:+.4f}" if c.estimate == c.estimate else ""
        table.add_row(escape(c.dataset), escape(c.loss), c.verdict, str(c.n), estimate, interval)
    console.print(table)
