"""Run one trial in isolation and turn whatever happens into a result row.

A trial never talks to another trial. Exceptions, NaN losses, time-outs and
out-of-memory errors become the trial's ``status``; the run goes on.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import resource
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from lossbench.errors import DataError, UserError
from lossbench.losses import LOSSES, make_loss
from lossbench.methods import METHODS
from lossbench.metrics import METRICS
from lossbench.provenance import device_name, environment
from lossbench.sources import Dataset, load_dataset
from lossbench.specs import TrialSpec, canonical_json, short_hash
from lossbench.tasks import TASK_TYPES
from lossbench.train import Diverged, TrialTimeout, train

MAX_ERROR_CHARS = 2000


@dataclass
class TrialResult:
    row: dict[str, Any]
    curves: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.row["status"])


@functools.lru_cache(maxsize=4)
def cached_dataset(uri: str) -> Dataset:
    """A worker runs many trials of the same dataset: parse it once per process."""
    return load_dataset(uri)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux: the worker process's peak so far, which bounds this trial's
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        "config": canonical_json(spec.config),
        "dataset_name": spec.dataset,
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


def execute(spec: TrialSpec, run_id: str = "", backend: str = "local", attempt: int = 1) -> TrialResult:
    """Run ``spec`` and return its row; never raises for a problem of the trial itself."""
    started = now()
    t0 = time.perf_counter()
    row = base_row(spec, run_id, backend, attempt)
    row.update(started_at=started, status="failed", error_type="", error_msg="")
    curves: list[dict[str, Any]] = []
    try:
        with threadpool_limits(spec.threads):
            torch.set_num_threads(spec.threads)
            outcome = _run(spec, row)
        row.update(outcome.row)
        curves = outcome.curves
    except Diverged as exc:
        _fail(row, "diverged", exc)
    except TrialTimeout as exc:
        _fail(row, "timeout", exc)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        _fail(row, "oom", exc)
    except UserError as exc:
        _fail(row, "failed", exc, with_traceback=False)
    except Exception as exc:  # isolation: a bug in one loss must not end the run
        _fail(row, "failed", exc)
    row["wall_s"] = time.perf_counter() - t0
    row["peak_rss_mb"] = peak_rss_mb()
    row["ended_at"] = now()
    for c in curves:
        c["trial_id"] = row["trial_id"]
    return TrialResult(row, curves)


def _fail(row: dict[str, Any], status: str, exc: BaseException, with_traceback: bool = True) -> None:
    msg = str(exc) or type(exc).__name__
    if with_traceback and status == "failed":
        tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
        msg = f"{msg}\n{tail}"
    row.update(status=status, error_type=type(exc).__name__, error_msg=msg[:MAX_ERROR_CHARS])


def _run(spec: TrialSpec, row: dict[str, Any]) -> TrialResult:
    deadline = time.monotonic() + spec.trial_timeout if spec.trial_timeout else None
    obj = spec.objective
    task = TASK_TYPES.get(spec.task)
    data = cached_dataset(spec.dataset)
    if data.content_hash != spec.data_hash:
        raise DataError(
            f"Dataset {spec.dataset!r} changed since the run was planned "
            f"(hash {data.content_hash}, expected {spec.data_hash})."
        )
    prepared = task.prepare(data, spec)
    row.update(n_classes=prepared.n_classes, **{k: v for k, v in prepared.info.items() if k.startswith("n_")},
               dataset_name=data.name)
    loss_cls = LOSSES.get(obj.loss_name)
    method_cls = METHODS.get(obj.method_name)
    ok, reason = task.supports(loss_cls.info.tasks & method_cls.info.tasks, prepared)
    if not ok:
        return TrialResult({"status": "skipped", "error_type": "Unsupported", "error_msg": f"{obj}: {reason}"})

    # Pairing: the model is built first from the trial seed alone, so every loss starts from the same weights.
    torch.manual_seed(spec.seed)
    model = task.build_model(prepared, spec)
    torch.manual_seed(spec.seed + 1)
    loss = make_loss(obj.loss_name, obj.param_dict if obj.kind == "loss" else {},
                     **prepared.loss_context(spec.seed))
    method = method_cls(**(obj.param_dict if obj.kind == "method" else {}))
    prepared.to(spec.device)
    model.to(spec.device)
    loss.to(spec.device)

    result = train(task, model, prepared, loss, method, training=spec.config.get("training", {}),
                   seed=spec.seed, primary_metric=spec.primary_metric, deadline=deadline,
                   metrics=tuple(spec.metrics))
    final = method.finish(model, prepared)
    t_eval = time.perf_counter()
    metrics = task.evaluate(final, prepared, "test", spec.metrics)
    eval_s = time.perf_counter() - t_eval
    out = {f"m_{k}": float(v) for k, v in metrics.items()}
    out.update({f"m_{k}": float(v) for k, v in method.record().items()})
    out.update(
        status="ok",
        value=float(metrics[spec.primary_metric]),
        train_s=result.train_s,
        eval_s=eval_s,
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
    )
    if prepared.info.get("record"):
        out.update({k: v for k, v in prepared.info["record"].items()})
    return TrialResult(out, result.curves)


def describe(spec: TrialSpec) -> str:
    return json.dumps({"dataset": spec.dataset, "loss": spec.loss, "seed": spec.seed})
