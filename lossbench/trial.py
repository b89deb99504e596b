"""Run one trial in isolation and turn whatever happens into a result row.

A trial never talks to another trial. Exceptions, NaN losses, time-outs and
out-of-memory errors become the trial's ``status``; the run goes on.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import os
import resource
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lossbench import streams
from lossbench.config import TrainingConfig
from lossbench.errors import DataError, UserError
from lossbench.metrics import METRICS
from lossbench.objectives import applicable_tasks, build_loss, build_method
from lossbench.plugins import load_plugins
from lossbench.provenance import device_name, environment
from lossbench.sources import Dataset, load_dataset
from lossbench.specs import TrialSpec, canonical_json, short_hash
from lossbench.tasks import TASK_TYPES
from lossbench.train import Diverged, TrainResult, TrialTimeout, make_optimizer, train

MAX_ERROR_CHARS = 2000


@dataclass
class TrialResult:
    row: dict[str, Any]
    curves: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, np.ndarray] | None = None  # a few test predictions for report plots (segmentation)

    @property
    def status(self) -> str:
        return str(self.row["status"])


@functools.lru_cache(maxsize=4)
def cached_dataset(uri: str) -> Dataset:
    """A worker runs many trials of the same dataset: parse it once per process."""
    return load_dataset(uri)


_PREPARED: dict[tuple[str, ...], Any] = {}
PREPARED_CACHE_SIZE = 8  # the seeds of one stack fit
PREPARED_CACHE_BYTES = 32 * 2**20


def prepare_cached(task: Any, data: Dataset, spec: TrialSpec) -> Any:
    """``task.prepare``, remembered for the last few (dataset, seed, configuration) keys of this process.

    By the pairing invariant every loss of one (dataset, seed) gets the same split and preprocessing,
    so a worker running several losses of one seed fits them once. Each trial gets its own deep copy.
    """
    # spec.data_hash: _setup has just checked it against the data (hashing it again costs a pass over it)
    key = (spec.task, spec.dataset, spec.data_hash, str(spec.seed), canonical_json(spec.config.canonical()))
    if key in _PREPARED:
        return copy.deepcopy(_PREPARED[key])
    prepared = task.prepare(data, spec)
    try:
        size = sum(p.X.nbytes + p.y.nbytes for p in (prepared.train, prepared.val, prepared.test) if p is not None)
    except AttributeError:  # a task whose splits are not tensors: never cached
        size = PREPARED_CACHE_BYTES + 1
    if size <= PREPARED_CACHE_BYTES:  # large (image) data is not worth holding several copies of
        if len(_PREPARED) >= PREPARED_CACHE_SIZE:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = copy.deepcopy(prepared)
    return prepared


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux: the worker process's peak so far, which bounds this trial's
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: The ``training_mode`` column: how a trial was trained. It does not enter the trial key: every mode gives the
#: per-seed path's values (tests/test_vectorized.py).
PER_SEED, SEED_STACKED, LOSS_SEED_STACKED = "per-seed", "seed-stacked", "loss-seed-stacked"


def base_row(spec: TrialSpec, run_id: str, backend: str, attempt: int) -> dict[str, Any]:
    obj = spec.objective
    return {
        "trial_id": spec.trial_id,
        "run_id": run_id,
        "attempt": attempt,
        **spec.key,
        "loss_name": obj.loss_name,
        "method": obj.method_name,
        "loss_params": canonical_json(obj.param_dict),
        "config": canonical_json(spec.config.canonical()),
        "dataset_name": spec.dataset,
        "training_mode": PER_SEED,
        "metric": spec.primary_metric,
        "higher_is_better": METRICS.get(spec.primary_metric).greater_is_better,
        "eval_split": "test",
        "device": spec.device,
        "device_name": device_name(spec.device),
        "threads": spec.threads,
        "backend": backend,
        "worker": f"{short_hash(socket.gethostname(), 8)}:{os.getpid()}",
        **environment(),
    }


@contextlib.contextmanager
def hard_deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt a trial stuck inside one step (the loop's own check runs between batches).

    SIGALRM works only in a process's main thread, which is where loky runs tasks;
    elsewhere (threads of a dask worker) the loop's cooperative check remains.
    """
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TrialTimeout(f"trial ran past its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds) + 0.5)  # a little after the loop's own check
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def in_flight(marker_dir: str | None, trial_id: str) -> Iterator[None]:
    """A marker file while the trial runs, so the driver can tell which trial a dead worker was running."""
    if not marker_dir:
        yield
        return
    path = Path(marker_dir) / f"{trial_id}.{os.getpid()}"
    try:
        path.touch()
    except OSError:
        path = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


_warm = False  # this process has paid its one-time costs (warm_up)


def warm_up_step(device: str) -> None:
    """One optimisation step of a tiny model: the first one imports torch's compiler stack (the optimisers
    do, seconds) and initialises the device; every later trial of the process finds them ready."""
    with torch.random.fork_rng(devices=[]):  # draws nothing a trial would see
        model = torch.nn.Linear(4, 2).to(device)
        optimizer = make_optimizer(list(model.parameters()), TrainingConfig())
        x = torch.zeros(8, 4, device=device)
        torch.nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=device)).backward()
        optimizer.step()
        torch.softmax(model(x), dim=1).cpu()


def warm_up(spec: TrialSpec) -> float:
    """Pay once per process, before the first trial's clock and deadline start, what that trial would otherwise:
    importing the plug-ins and torch's optimiser machinery, initialising the device. The seconds it took
    (0 once warm) are the row's ``warmup_s``; a time-out can then never interrupt an import half-way."""
    global _warm
    t0 = time.perf_counter()
    load_plugins(spec.plugins)  # before the spec's loss name is resolved; the driver already imported them once
    if _warm:
        return 0.0
    warm_up_step(spec.device)
    _warm = True
    return time.perf_counter() - t0


def warm_worker(device: str, plugins: Sequence[str]) -> int:
    """``warm_up`` ahead of any trial (``runner.warm_workers``): the worker's first trial then finds it paid."""
    global _warm
    load_plugins(list(plugins))
    if not _warm:
        warm_up_step(device)
        _warm = True
    return os.getpid()


def execute(
    spec: TrialSpec, run_id: str = "", backend: str = "local", attempt: int = 1, marker_dir: str | None = None
) -> TrialResult:
    """Run ``spec`` and return its row; never raises for a problem of the trial itself."""
    warmup_s = warm_up(spec)  # not part of this trial's wall time or deadline
    started = now()
    t0 = time.perf_counter()
    row = base_row(spec, run_id, backend, attempt)
    row.update(started_at=started, status="failed", error_type="", error_msg="", warmup_s=warmup_s)
    curves: list[dict[str, Any]] = []
    examples: dict[str, np.ndarray] | None = None
    try:
        with in_flight(marker_dir, spec.trial_id), threadpool_limits(spec.threads), hard_deadline(spec.trial_timeout):
            torch.set_num_threads(spec.threads)
            outcome = _run(spec, row)
        row.update(outcome.row)
        curves, examples = outcome.curves, outcome.examples
    except Exception as exc:  # isolation: a bug in one loss must not end the run
        _classify(row, exc)
    row["wall_s"] = time.perf_counter() - t0
    row["peak_rss_mb"] = peak_rss_mb()
    row["ended_at"] = now()
    for c in curves:
        c["trial_id"] = row["trial_id"]
    return TrialResult(row, curves, examples)


def _fail(row: dict[str, Any], status: str, exc: BaseException, with_traceback: bool = True) -> None:
    msg = str(exc) or type(exc).__name__
    if with_traceback and status == "failed":
        tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        msg = f"{msg}\n{tail}"
    row.update(status=status, error_type=type(exc).__name__, error_msg=msg[:MAX_ERROR_CHARS])


@dataclass
class Setup:
    """One trial made ready to train: the per-seed path and the seed-stacked path start from the same objects."""

    task: Any
    prepared: Any
    model: torch.nn.Module
    loss: torch.nn.Module
    method: Any
    deadline: float | None
    rng_state: torch.Tensor  # the global RNG state training starts from (dropout masks are drawn from it)
    info: dict[str, Any] = field(default_factory=dict)  # row columns about the data: n_classes, n_train, ...


class Unsupported(Exception):
    """The trial's loss or method does not apply to its data: the trial is recorded as skipped."""

    def __init__(self, reason: str, info: dict[str, Any]) -> None:
        super().__init__(reason)
        self.info = info


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def setup(spec: TrialSpec) -> Setup:
    """Load, split and preprocess; build model, loss and method, exactly as a trial does before training.

    Raises :class:`Unsupported` when the loss or method does not apply to the data.
    """
    deadline = time.monotonic() + spec.trial_timeout if spec.trial_timeout else None
    obj = spec.objective
    task = TASK_TYPES.get(spec.task)
    data = cached_dataset(spec.dataset)
    if data.content_hash != spec.data_hash:
        raise DataError(
            f"Dataset {spec.dataset!r} changed since the run was planned "
            f"(hash {data.content_hash}, expected {spec.data_hash})."
        )
    prepared = prepare_cached(task, data, spec)
    info = {"n_classes": prepared.n_classes, **{k: v for k, v in prepared.info.items() if k.startswith("n_")},
            "dataset_name": data.name}
    ok, reason = task.supports(applicable_tasks(obj), prepared)
    if not ok:
        raise Unsupported(f"{obj}: {reason}", info)

    # Pairing: the model is built from the trial seed's own stream, so every loss starts from the same weights.
    streams.seed_torch(spec.seed, "init")
    model = task.build_model(prepared, spec)
    streams.seed_torch(spec.seed, "loss")  # a loss that initialises layers without a generator
    loss = build_loss(obj, **prepared.loss_context(spec.seed))
    method = build_method(obj)
    rng_state = streams.generator(spec.seed, "dropout").get_state()  # what training draws dropout masks from
    prepared.to(spec.device)
    model.to(spec.device)
    loss.to(spec.device)
    dtype = DTYPES[spec.config.training.dtype or "float32"]
    if dtype != torch.float32:  # float64 for exactness checks; inputs, weights and loss buffers alike
        for name in ("train", "val", "test"):
            part = getattr(prepared, name)
            if part is not None:
                setattr(prepared, name, type(part)(part.X.to(dtype), part.y))
        for key, value in prepared.info.items():  # side tensors the task evaluates with (a retrieval corpus)
            if torch.is_tensor(value) and value.is_floating_point():
                prepared.info[key] = value.to(dtype)
        model.to(dtype)
        loss.to(dtype)
    return Setup(task, prepared, model, loss, method, deadline, rng_state, info)


def _finish(spec: TrialSpec, ready: Setup, result: TrainResult) -> TrialResult:
    """Test-split metrics of the trained model: the row's outcome columns."""
    final = ready.method.finish(ready.model, ready.prepared)
    t_eval = time.perf_counter()
    metrics = ready.task.evaluate(final, ready.prepared, "test", spec.metrics)
    eval_s = time.perf_counter() - t_eval
    out = {f"m_{k}": float(v) for k, v in metrics.items()}
    out.update({f"m_{k}": float(v) for k, v in ready.method.record().items()})
    out.update(
        status="ok",
        value=float(metrics[spec.primary_metric]),
        train_s=result.train_s,
        eval_s=eval_s,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
    )
    if ready.prepared.info.get("record"):
        out.update({k: v for k, v in ready.prepared.info["record"].items()})
    return TrialResult(out, result.curves, ready.task.examples(final, ready.prepared, spec))


def train_setup(spec: TrialSpec, ready: Setup) -> TrainResult:
    """Train a trial's model as ``execute`` does (best validation epoch restored)."""
    return train(ready.task, ready.model, ready.prepared, ready.loss, ready.method, training=spec.config.training,
                 seed=spec.seed, primary_metric=spec.primary_metric, deadline=ready.deadline,
                 metrics=tuple(spec.metrics))


def _run(spec: TrialSpec, row: dict[str, Any]) -> TrialResult:
    task = TASK_TYPES.get(spec.task)
    if task.runs_trials:  # a task with its own protocol (unlearning: pre-train, oracles, then the method)
        return task.run_trial(spec, row)
    try:
        ready = setup(spec)
    except Unsupported as exc:
        row.update(exc.info)
        return TrialResult({"status": "skipped", "error_type": "Unsupported", "error_msg": str(exc)})
    row.update(ready.info)
    return _finish(spec, ready, train_setup(spec, ready))


def _classify(row: dict[str, Any], exc: BaseException) -> None:
    """The status of a trial that raised: the same mapping for the per-seed and the stacked path."""
    if isinstance(exc, Diverged):
        _fail(row, "diverged", exc)
    elif isinstance(exc, TrialTimeout):
        _fail(row, "timeout", exc)
    elif isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        _fail(row, "oom", exc)
    elif isinstance(exc, UserError):
        _fail(row, "failed", exc, with_traceback=False)
    else:
        _fail(row, "failed", exc)


def execute_stacked(
    specs: Sequence[TrialSpec], run_id: str = "", backend: str = "local", marker_dir: str | None = None
) -> list[TrialResult]:
    """Run trials of one (dataset, configuration) as one stacked model: every trial whose loss and method allow it
    (``vectorized.member_reason``), whatever its loss and seed, is a member of one stack; each other trial runs alone
    (``execute``), and so does every trial when the model cannot be stacked. Rows are those ``execute`` gives, in the
    order of ``specs`` (``train_s``, ``wall_s``: the stack's times over its members).
    """
    from lossbench.vectorized import member_reason, train_stacked, unsupported_reason

    if len(specs) < 2 or TASK_TYPES.get(specs[0].task).runs_trials:
        return [execute(s, run_id=run_id, backend=backend, marker_dir=marker_dir) for s in specs]
    warmup_s = warm_up(specs[0]) / len(specs)  # shared among the trials, like the stack's wall time
    t0 = time.perf_counter()
    results: dict[int, TrialResult] = {}
    alone: list[int] = []
    with threadpool_limits(specs[0].threads):
        torch.set_num_threads(specs[0].threads)
        ready: dict[int, Setup] = {}
        # seed by seed: the worker's prepared-split cache then serves each seed's losses from one preparation
        order = sorted(range(len(specs)), key=lambda i: (specs[i].seed, i))
        with contextlib.ExitStack() as marked:
            for i in order:
                marked.enter_context(in_flight(marker_dir, specs[i].trial_id))
            marked.enter_context(hard_deadline(sum(s.trial_timeout for s in specs)
                                               if all(s.trial_timeout for s in specs) else None))
            for i in order:
                try:
                    ready[i] = setup(specs[i])
                except Exception:  # skipped, or failing: its own run records why
                    alone.append(i)
        members = [i for i in order if i in ready and member_reason(ready[i].loss, ready[i].method) is None]
        alone += [i for i in order if i in ready and i not in members]
        if len(members) < 2 or unsupported_reason([ready[i].model for i in members],
                                                  [ready[i].prepared for i in members],
                                                  [ready[i].loss for i in members],
                                                  [ready[i].method for i in members]) is not None:
            alone, members = alone + members, []
        for i in alone:
            ready.pop(i, None)  # its own run sets it up again
        if members:
            results.update(zip(members, _train_members([specs[i] for i in members], [ready.pop(i) for i in members],
                                                       run_id, backend, marker_dir, warmup_s, train_stacked),
                               strict=True))
    wall = (time.perf_counter() - t0) / max(len(members), 1)
    for i in members:
        results[i].row["wall_s"] = wall
    for i in sorted(alone):
        results[i] = execute(specs[i], run_id=run_id, backend=backend, marker_dir=marker_dir)
        results[i].row["warmup_s"] = warmup_s
    return [results[i] for i in range(len(specs))]


def _train_members(specs: list[TrialSpec], ready: list[Setup], run_id: str, backend: str, marker_dir: str | None,
                   warmup_s: float, train_stacked: Any) -> list[TrialResult]:
    """Train the members of one stack together and evaluate each; one result per member, never raises."""
    mode = LOSS_SEED_STACKED if len({s.objective for s in specs}) > 1 else SEED_STACKED
    rows = [base_row(s, run_id, backend, 1) for s in specs]
    for row, x in zip(rows, ready, strict=True):
        row.update(started_at=now(), status="failed", error_type="", error_msg="", warmup_s=warmup_s,
                   training_mode=mode, **x.info)
    timeout = sum(s.trial_timeout for s in specs) if all(s.trial_timeout for s in specs) else None
    try:
        with contextlib.ExitStack() as stack:
            for s in specs:
                stack.enter_context(in_flight(marker_dir, s.trial_id))
            stack.enter_context(hard_deadline(timeout))  # the stack gets the sum of its trials' limits
            gens = [torch.Generator() for _ in ready]
            for g, x in zip(gens, ready, strict=True):
                g.set_state(x.rng_state)  # where each member's dropout draws would start in its own process
            deadline = time.monotonic() + timeout if timeout else None
            outcomes = train_stacked(ready[0].task, [x.model for x in ready], [x.prepared for x in ready],
                                     [x.loss for x in ready], [x.method for x in ready], gens,
                                     training=specs[0].config.training, seeds=[s.seed for s in specs],
                                     primary_metric=specs[0].primary_metric, deadline=deadline)
            results: list[TrialResult] = []
            for spec, row, x, outcome in zip(specs, rows, ready, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    _classify(row, outcome)
                    results.append(TrialResult(row))
                    continue
                try:
                    done = _finish(spec, x, outcome)
                    row.update(done.row)
                    results.append(TrialResult(row, done.curves, done.examples))
                except Exception as exc:  # isolation: one member's evaluation failing leaves the others' rows
                    _classify(row, exc)
                    results.append(TrialResult(row))
    except Exception as exc:  # the whole stack failed (time-out, out of memory, a bug): one status for every member
        results = []
        for row in rows:
            _classify(row, exc)
            results.append(TrialResult(row))
    for result in results:
        result.row["peak_rss_mb"] = peak_rss_mb()
        result.row["ended_at"] = now()
        for c in result.curves:
            c["trial_id"] = result.row["trial_id"]
    return results


def crashed(spec: TrialSpec, run_id: str, backend: str, attempt: int, reason: str) -> TrialResult:
    """The row of a trial whose worker process died under it (killed, segfault, out of memory)."""
    row = base_row(spec, run_id, backend, attempt)
    stamp = now()
    row.update(status="crashed", error_type="WorkerDied", error_msg=reason[:MAX_ERROR_CHARS], started_at=stamp,
               ended_at=stamp)
    return TrialResult(row)
