"""The one training loop: seeded batch order, early stopping on validation, per-epoch curves.

The method decides what a step does; the loop owns epochs, batches, the
optimiser, divergence and the trial deadline.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lossbench.config import TrainingConfig
from lossbench.losses.base import first_checkpoint
from lossbench.methods.base import Batch, Method, MethodContext, StepState
from lossbench.metrics import METRICS
from lossbench.tasks.base import Prepared, TaskType


class Diverged(RuntimeError):
    """The training objective became NaN or infinite."""


class TrialTimeout(RuntimeError):
    """The trial ran past its deadline."""


def batch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of training rows for one epoch: a function of (seed, epoch) only.

    Every loss and method trained with the same seed sees the same batches.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def iterate_batches(n: int, batch_size: int, seed: int, epoch: int) -> Iterator[torch.Tensor]:
    order = batch_order(n, seed, epoch)
    for start in range(0, n, batch_size):
        chunk = order[start : start + batch_size]
        if len(chunk) < 2 and n >= 2:
            continue  # a 1-row batch breaks batch norm and batch-level losses; its rows recur next epoch
        yield chunk


def step_state(seed: int) -> StepState:
    """A trial's per-step state; its generator (mixup draws, partners, ...) is a function of the seed only."""
    return StepState(generator=torch.Generator(device="cpu").manual_seed(seed + 7919))


def make_optimizer(params: list[nn.Parameter], training: TrainingConfig) -> torch.optim.Optimizer:
    name, lr, wd = training.optimizer, training.lr, training.weight_decay
    # The fused kernels update every tensor in one call: on small models the per-tensor Python loop of
    # the default implementation costs as much as the forward pass. CPU and CUDA have them.
    fused = {"fused": True} if all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params) else {}
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=training.momentum, weight_decay=wd, **fused)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, **fused)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd, **fused)


@dataclass
class TrainResult:
    epochs_run: int = 0
    best_epoch: int = 0
    train_s: float = 0.0
    curves: list[dict[str, Any]] = field(default_factory=list)  # rows of the long metrics table


def train(
    task: TaskType,
    model: nn.Module,
    prepared: Prepared,
    loss: nn.Module,
    method: Method,
    *,
    training: TrainingConfig,
    seed: int,
    primary_metric: str,
    deadline: float | None = None,
    metrics: tuple[str, ...] = (),
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    epochs, batch_size, patience = training.epochs, training.batch_size, training.patience
    state = step_state(seed)

    def fit(other: nn.Module, other_loss: nn.Module, other_method: Method) -> TrainResult:
        # Same loop, configuration, seed and deadline: a teacher sees the same batches as the student.
        return train(task, other, prepared, other_loss, other_method, training=training, seed=seed,
                     primary_metric=primary_metric, deadline=deadline, metrics=metrics)

    context = MethodContext(task=task, training=training, seed=seed, primary_metric=primary_metric,
                            metrics=tuple(metrics), device=prepared.train.X.device, deadline=deadline, fit=fit)
    # Setup runs before the optimiser is built, so parameters a method adds (an auxiliary head) are optimised too.
    method.setup(model, prepared, loss, state, context)
    params = [p for p in [*model.parameters(), *loss.parameters(), *method.parameters()] if p.requires_grad]
    optimizer = make_optimizer(params, training)

    metric = METRICS.get(primary_metric)
    sign = 1.0 if metric.greater_is_better else -1.0
    # A loss with a warm-up (betti-matching) is not yet itself before this epoch: no checkpoint, no patience.
    first_epoch = first_checkpoint(loss)
    best_score, best_state, best_epoch, stale = -math.inf, None, 0, 0
    result = TrainResult()
    start = time.perf_counter()
    X, y = prepared.train.X, prepared.train.y
    for epoch in range(epochs):
        state.epoch = epoch
        model.train()
        total, count = 0.0, 0
        for idx in iterate_batches(len(y), batch_size, seed, epoch):
            if deadline is not None and time.monotonic() > deadline:
                raise TrialTimeout(f"trial ran past its time limit in epoch {epoch}")
            dev_idx = idx.to(X.device)
            batch = Batch(task.augment(prepared, X[dev_idx], idx, seed, epoch), y[dev_idx], idx)
            value = method.update(model, batch, loss, optimizer, state)
            if not math.isfinite(value):
                raise Diverged(f"training objective became {value} at epoch {epoch}, step {state.step}")
            total += value * len(idx)
            count += len(idx)
            state.step += 1
        result.epochs_run = epoch + 1
        result.curves.append({"split": "train", "metric": "loss", "step": epoch, "value": total / max(count, 1)})
        if prepared.val is None:
            continue
        score = task.evaluate(model, prepared, "val", (primary_metric,))[primary_metric]
        result.curves.append({"split": "val", "metric": primary_metric, "step": epoch, "value": score})
        if epoch < first_epoch:
            continue
        if math.isfinite(score) and sign * score > best_score:
            best_score, best_epoch, stale = sign * score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if patience and stale >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
        result.best_epoch = best_epoch
    else:
        result.best_epoch = result.epochs_run - 1
    result.train_s = time.perf_counter() - start
    return result
