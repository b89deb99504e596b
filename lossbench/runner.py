"""Expand a suite into trials, skip finished ones, dispatch the rest, stream rows to the store."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky.process_executor import BrokenProcessPool

from lossbench.backends import BackendConfig, parallel_backend
from lossbench.errors import DataUnavailable, UserError
from lossbench.objectives import check_task, parse_objective
from lossbench.provenance import environment, versions
from lossbench.sources import load_dataset
from lossbench.specs import ObjectiveSpec, TrialSpec
from lossbench.store import ResultStore
from lossbench.suite import Suite
from lossbench.tasks import TASK_TYPES
from lossbench.trial import TrialResult, crashed, execute, execute_stacked, warm_worker

log = logging.getLogger("lossbench")


@dataclass
class Plan:
    """The trial grid of one command, split into what will run and what is already done."""

    suite: Suite
    trials: list[TrialSpec]
    pending: list[TrialSpec]
    skipped_done: int
    data_hashes: dict[str, str] = field(default_factory=dict)
    data_sizes: dict[str, int] = field(default_factory=dict)  # rows (or images) per dataset: a trial's relative cost
    unavailable: dict[str, str] = field(default_factory=dict)  # suite datasets that cannot be had here: uri -> why


def resolve_objectives(suite: Suite, losses: Sequence[str] | None) -> list[ObjectiveSpec]:
    """The objectives to run: ``--loss`` specs (parsed once, here) or the suite's; duplicates dropped."""
    chosen = [parse_objective(x) for x in losses] if losses else list(suite.objectives)
    for obj in chosen:  # before any training: a method of another task family is refused, not skipped per trial
        check_task(obj, TASK_TYPES.get(suite.task))
    return list(dict.fromkeys(chosen))


def resolve_datasets(
    suite: Suite, datasets: Sequence[str] | None, sizes: dict[str, int] | None = None,
    unavailable: dict[str, str] | None = None,
) -> dict[str, str]:
    """Load each dataset once in the driver: a bad URI fails before any trial runs, and its hash keys the trials.

    ``sizes``, when given, receives each dataset's row count. A dataset of the *suite* that cannot be had here (an
    OpenML id absent from the cache, offline) is left out with one warning line and recorded in ``unavailable``:
    the rest of the suite runs. One the user named with ``--dataset``, or a suite none of whose datasets can be
    had, is an error.
    """
    uris = list(datasets) if datasets else list(suite.datasets)
    hashes: dict[str, str] = {}
    missing: dict[str, str] = {}
    task = TASK_TYPES.get(suite.task)
    for uri in uris:
        try:
            ds = load_dataset(uri)
        except DataUnavailable as exc:
            if datasets:
                raise
            missing[uri] = exc.message
            log.warning("skipped %s: %s", uri, exc.message)
            continue
        task.check_data(ds)
        task.check_options(ds, suite.config.options)
        hashes[ds.uri] = ds.content_hash
        if sizes is not None:
            sizes[ds.uri] = len(ds.y)
    if missing and not hashes:
        first = next(iter(missing.values()))
        raise DataUnavailable(f"None of the {len(missing)} datasets of suite {suite.name!r} is available here: "
                              f"{first}", "Pass --openml-cache DIR, or run once with network access.")
    if unavailable is not None:
        unavailable.update(missing)
    return hashes


def expand(
    suite: Suite,
    *,
    losses: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    trial_timeout: float | None = None,
    device: str = "cpu",
    threads: int = 1,
    plugins: Sequence[str] = (),
    sizes: dict[str, int] | None = None,
    unavailable: dict[str, str] | None = None,
) -> tuple[list[TrialSpec], dict[str, str]]:
    hashes = resolve_datasets(suite, datasets, sizes, unavailable)
    objectives = resolve_objectives(suite, losses)
    seed_list = list(seeds) if seeds is not None else list(suite.seeds)
    trials = [
        TrialSpec(
            suite=suite.name,
            suite_version=suite.version,
            task=suite.task,
            dataset=uri,
            data_hash=data_hash,
            objective=obj,
            seed=seed,
            config=suite.config,
            metrics=tuple(suite.metrics),
            primary_metric=suite.primary_metric,
            trial_timeout=trial_timeout,
            device=device,
            threads=threads,
            plugins=tuple(plugins),
        )
        for uri, data_hash in hashes.items()
        for seed in seed_list
        for obj in objectives
    ]
    return trials, hashes


def plan(store: ResultStore | None, suite: Suite, rerun: str = "none", **kwargs: Any) -> Plan:
    if rerun not in ("none", "failed", "all"):
        raise UserError(f"Unknown --rerun value {rerun!r}.", "Use failed or all.")
    sizes: dict[str, int] = {}
    unavailable: dict[str, str] = {}
    trials, hashes = expand(suite, sizes=sizes, unavailable=unavailable, **kwargs)
    done = store.completed(rerun) if store is not None and store.root.exists() else set()
    pending = [t for t in trials if t.trial_id not in done]
    return Plan(suite, trials, pending, len(trials) - len(pending), hashes, sizes, unavailable)


Unit = list[TrialSpec]  # what one worker task runs: trials one after another, or seeds trained stacked


def stacks(pending: Sequence[TrialSpec], vectorize: bool = True, workers: int = 1) -> list[Unit]:
    """Group trials into units of work: with ``vectorize``, every pending trial of one (dataset, configuration),
    all its losses and seeds, in one unit to train stacked (``trial.execute_stacked``), in grid order; otherwise
    one trial per unit.

    With fewer units than ``workers``, the largest unit is halved by seed until each worker has one (a unit
    keeps whole seeds: each seed's split is prepared once).
    """
    if not vectorize:
        return [[s] for s in pending]
    groups: dict[str, Unit] = {}
    for spec in pending:  # the trial id with the seed and the objective left out
        groups.setdefault(replace(spec, seed=0, objective=ObjectiveSpec("")).trial_id, []).append(spec)
    units = list(groups.values())
    while units and len(units) < workers:
        unit = max(units, key=lambda u: (len({s.seed for s in u}), len(u)))
        seeds = list(dict.fromkeys(s.seed for s in unit))
        if len(seeds) < 2:
            break
        first = set(seeds[: len(seeds) // 2])
        at = units.index(unit)
        units[at : at + 1] = [[s for s in unit if s.seed in first], [s for s in unit if s.seed not in first]]
    return units


def by_split(pending: Sequence[TrialSpec]) -> list[Unit]:
    """The trials of one (dataset, seed, configuration) in one unit, in grid order.

    They share the seed's split and preprocessing, which a worker computes once: spread over several
    workers, each would compute it again.
    """
    groups: dict[str, Unit] = {}
    for spec in pending:
        groups.setdefault(replace(spec, objective=ObjectiveSpec("")).trial_id, []).append(spec)
    return list(groups.values())


def largest_first(units: list[Unit], sizes: Mapping[str, int]) -> list[Unit]:
    """Units by estimated cost (dataset rows × trials), largest first; ties keep grid order.

    Parallel workers then finish together: a large unit started last would leave the other workers idle.
    """
    return sorted(units, key=lambda u: -sizes.get(u[0].dataset, 0) * len(u))


def _worker_execute(
    unit: Unit, run_id: str, backend: str, marker_dir: str | None, stacked: bool = False
) -> list[TrialResult]:
    # scikit-learn's own joblib calls (ColumnTransformer, ...) run in this process: under the dask backend
    # they would otherwise be shipped to the cluster, and the waiting task would secede and let its worker
    # start a second trial beside it.
    with parallel_config(backend="sequential"):
        if stacked and len(unit) > 1:
            return execute_stacked(unit, run_id=run_id, backend=backend, marker_dir=marker_dir)
        return [execute(spec, run_id=run_id, backend=backend, marker_dir=marker_dir) for spec in unit]


def warm_workers(backend: BackendConfig, device: str, plugins: Sequence[str]) -> threading.Thread | None:
    """Start the local workers and pay their one-time costs (imports, torch's optimiser machinery, the device) in
    the background while the driver plans and loads the data; join the thread before ``run``.

    joblib keeps one loky pool for the process, so the run's ``Parallel`` finds these workers started and warm.
    Only a head start: if it fails, the run's workers warm up as before.
    """
    if backend.name != "loky" or backend.n_jobs < 2:
        return None

    def start() -> None:
        try:
            with parallel_backend(backend) as kwargs:
                Parallel(**kwargs)(delayed(warm_worker)(device, list(plugins)) for _ in range(backend.n_jobs))
        except Exception:  # a failed head start changes nothing the run relies on
            pass

    thread = threading.Thread(target=start, name="lossbench-warm-workers", daemon=True)
    thread.start()
    return thread


def dask_failures() -> tuple[type[BaseException], ...]:
    """What joblib's dask backend raises when a worker died under a task or the task was cancelled."""
    from concurrent.futures import CancelledError

    failures: list[type[BaseException]] = [CancelledError]
    try:
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError

        failures += [KilledWorker, CommClosedError]
    except ImportError:
        pass
    return tuple(failures)


def dispatch(
    pending: Sequence[TrialSpec],
    backend: BackendConfig,
    run_id: str,
    marker_dir: str | None = None,
    vectorize: bool = True,
    sizes: Mapping[str, int] | None = None,
) -> Iterator[list[TrialResult]]:
    """Run trials in parallel workers and yield the results of each unit as soon as it finishes.

    When a loky worker dies mid-trial (killed, segfault, out of memory), the pool breaks:
    the trials that were in flight are retried once, one at a time in a fresh worker (``run_isolated``), and
    recorded as ``crashed`` if they kill it again; the rest of the grid goes on.

    Under dask the scheduler itself resubmits a task whose worker died (up to its
    ``allowed-failures``, plus ``--retries``); when it gives up (``KilledWorker``) or the task
    is cancelled, the trials that were running in a dead worker are recorded as ``crashed``,
    trials that never returned are run again, and the rest of the grid goes on.
    """
    sequential = backend.name == "loky" and backend.n_jobs == 1
    units = stacks(pending, vectorize, 1 if sequential else max(backend.n_jobs, 1))
    if sequential or (backend.name == "loky" and len(units) <= 1):
        for unit in units:
            yield _worker_execute(unit, run_id, "sequential", None, vectorize)
        return
    units = largest_first(units if vectorize else by_split(pending), sizes or {})
    failures: tuple[type[BaseException], ...] = (BrokenProcessPool,)
    if backend.name == "dask":
        failures += dask_failures()
    remaining = units
    unidentified = 0
    for attempt in itertools.count():
        if not remaining:
            return
        # A fresh marker folder per attempt: a worker the last cluster shut down mid-trial can still
        # write or leave a marker after the cleanup, and it must not be taken for this attempt's dead.
        markers = round_markers(marker_dir, attempt)
        received: set[str] = set()
        failure: BaseException | None = None
        dead: list[TrialSpec] = []
        with parallel_backend(backend) as kwargs:
            try:
                for results in Parallel(return_as="generator_unordered", **kwargs)(
                    delayed(_worker_execute)(unit, run_id, backend.name, markers, vectorize) for unit in remaining
                ):
                    received.update(result.row["trial_id"] for result in results)
                    yield results
                return
            except failures as exc:
                failure = exc
                if backend.name == "dask":
                    # Before the cluster closes: closing it ends the live workers too, and their markers would look dead.
                    dead = dead_worker_trials(markers, [s for u in remaining for s in u if s.trial_id not in received])
        reason = (str(failure).splitlines() or [type(failure).__name__])[0]
        unfinished_units = [u2 for u2 in ([s for s in u if s.trial_id not in received] for u in remaining) if u2]
        unfinished = [s for u in unfinished_units for s in u]
        if backend.name == "loky":
            suspects = in_flight_trials(markers, unfinished) or unfinished[:1]
            for result in run_isolated(suspects, run_id, backend, reason=reason):
                yield [result]
        else:
            suspects = dead
            if not suspects:
                # No marker names the trial (workers on other hosts): after a second such failure,
                # the first unfinished unit is recorded, so a trial that always kills its worker cannot loop.
                unidentified += 1
                suspects = unfinished_units[0] if unidentified >= 2 else []
            else:
                unidentified = 0
            if len(suspects) > 1:
                # A stack died with its worker: its trials go again one per unit, so that only the trial
                # that kills its worker is recorded as crashed.
                alone = {s.trial_id for s in suspects}
                remaining = [[s] for s in suspects] + [u2 for u2 in ([s for s in u if s.trial_id not in alone]
                                                                     for u in unfinished_units) if u2]
                continue
            for spec in suspects:
                yield [crashed(spec, run_id, "dask", 1 + backend.retries,
                               f"dask worker died running this trial ({type(failure).__name__}: {reason})")]
        done = {s.trial_id for s in suspects}
        remaining = [u2 for u2 in ([s for s in u if s.trial_id not in done] for u in unfinished_units) if u2]


def round_markers(marker_dir: str | None, attempt: int) -> str | None:
    if not marker_dir:
        return None
    path = Path(marker_dir) / f"attempt-{attempt}"
    path.mkdir(exist_ok=True)
    return str(path)


def in_flight_trials(marker_dir: str | None, candidates: Sequence[TrialSpec]) -> list[TrialSpec]:
    if not marker_dir:
        return []
    names = {p.name.split(".")[0] for p in Path(marker_dir).glob("*.*")}
    for p in Path(marker_dir).glob("*.*"):
        p.unlink(missing_ok=True)
    return [s for s in candidates if s.trial_id in names]


def dead_worker_trials(marker_dir: str | None, candidates: Sequence[TrialSpec]) -> list[TrialSpec]:
    """Trials whose in-flight marker names a process that no longer exists (markers are ``trial_id.pid``).

    Markers of live processes stay: those trials are still running (joblib does not stop them) and
    clean up after themselves. Only meaningful for workers on this host, which share the marker folder.
    """
    if not marker_dir:
        return []
    dead: set[str] = set()
    for p in Path(marker_dir).glob("*.*"):
        trial_id, _, pid = p.name.partition(".")
        if pid.isdigit() and not pid_alive(int(pid)):
            dead.add(trial_id)
            p.unlink(missing_ok=True)
    return [s for s in candidates if s.trial_id in dead]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed worker its nanny has not reaped yet is a zombie: dead for our purposes
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[-1][:4]
    except OSError:
        return True


def run_isolated(specs: Sequence[TrialSpec], run_id: str, backend: BackendConfig, reason: str
                 ) -> Iterator[TrialResult]:
    """Retry each trial alone, one after another, in a worker process of its own; ``crashed`` if it kills it again.

    One trial at a time, so a death names its trial; the next trials go on in a fresh process. A stack that died
    with its worker (15 trials in flight) costs one or two process start-ups this way, not fifteen.
    """
    from joblib.externals.loky import ProcessPoolExecutor

    pending = list(specs)
    while pending:
        # joblib runs n_jobs=1 in the calling process; a worker process of our own keeps the driver safe
        with ProcessPoolExecutor(max_workers=1, env={"OMP_NUM_THREADS": str(backend.threads)}) as executor:
            try:
                while pending:
                    result = executor.submit(_worker_execute, [pending[0]], run_id, "loky", None).result()[0]
                    pending.pop(0)
                    yield result
            except BrokenProcessPool as exc:
                spec = pending.pop(0)
                yield crashed(spec, run_id, "loky", 2,
                              f"worker process died twice running this trial: {reason}; {exc}")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def manifest_entry(run_id: str, suite: Suite, the_plan: Plan, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "suite": suite.resolved(),
        "datasets": the_plan.data_hashes,
        "unavailable": the_plan.unavailable,
        "n_trials": len(the_plan.trials),
        "n_pending": len(the_plan.pending),
        "options": options,
        "versions": versions(),
        "environment": environment(),
    }


def run(
    store: ResultStore,
    the_plan: Plan,
    *,
    backend: BackendConfig | None = None,
    options: dict[str, Any] | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
    vectorize: bool = True,
) -> list[dict[str, Any]]:
    """Run the pending trials of ``the_plan``, writing each row as it arrives; returns the new rows.

    ``vectorize``: train the trials of each (dataset, configuration) stacked where their model, losses and methods
    allow it (the same values as one by one; ``trial.execute_stacked``)."""
    run_id = new_run_id()
    store.open_for_writing()
    rows: list[dict[str, Any]] = []
    # The lock comes first: a second run into the same directory is refused before it writes anything.
    with store.lock(), store.marker_dir(run_id) as markers:
        store.record_run(manifest_entry(run_id, the_plan.suite, the_plan, options or {}))
        for results in dispatch(the_plan.pending, (backend or BackendConfig()).validate(), run_id, markers,
                                vectorize=vectorize, sizes=the_plan.data_sizes):
            for result in results:  # examples before the rows that make them visible
                store.write_examples(result.row["trial_id"], result.examples)
            # one fragment per unit of work: fewer files to write now and to compact at the end
            store.append([r.row for r in results], [c for r in results for c in r.curves], run_id)
            for result in results:
                rows.append(result.row)
                if on_result is not None:
                    on_result(result)
        entry = next(r for r in store.read_manifest()["runs"] if r.get("run_id") == run_id)
        entry["ended_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
        entry["status_counts"] = _counts(rows)
        store.record_run(entry)
        store.compact(run_id)  # under the lock: another writer never sees fragments vanish mid-read
    return rows


def _counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[str(r["status"])] = out.get(str(r["status"]), 0) + 1
    return out
