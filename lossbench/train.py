"""The one training loop: seeded batch order, early stopping on validation, per-epoch curves.

:func:`fit` trains S ≥ 1 members (trials) together: it owns the epochs, the batch order of each member's seed,
the deadline, divergence, early stopping and the curves. A :class:`Learner` owns the models and says what one
step and one validation are: :class:`ModelLearner` trains one model with its method (any task, any method);
the seed-stacked learner of :mod:`lossbench.vectorized` trains S small MLPs as one batched model.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from lossbench import streams
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
    return torch.randperm(n, generator=streams.generator(seed, "batch_order", epoch))


def batches(orders: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive ``(S, batch)`` slices of the members' row orders ``(S, n)``.

    A trailing 1-row batch is skipped: it breaks batch norm and batch-level losses; its rows recur next epoch.
    """
    n = orders.shape[1]
    for start in range(0, n, batch_size):
        chunk = orders[:, start : start + batch_size]
        if chunk.shape[1] < 2 and n >= 2:
            continue
        yield chunk


def iterate_batches(n: int, batch_size: int, seed: int, epoch: int) -> Iterator[torch.Tensor]:
    """One seed's batches of row indices in one epoch."""
    for chunk in batches(batch_order(n, seed, epoch)[None], batch_size):
        yield chunk[0]


def step_state(seed: int) -> StepState:
    """A trial's per-step state; its generator (mixup draws, partners, ...) is a function of the seed only."""
    return StepState(generator=streams.generator(seed, "method"))


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
    """One member's outcome, and its rows of the long metrics table (``curves``)."""

    epochs_run: int = 0
    best_epoch: int = 0
    train_s: float = 0.0
    curves: list[dict[str, Any]] = field(default_factory=list)

    def record(self, split: str, metric: str, epoch: int, value: float) -> None:
        self.curves.append({"split": split, "metric": metric, "step": epoch, "value": value})


@dataclass
class EarlyStopping:
    """The best validation epoch of one member, and when to stop looking for a better one.

    Stops after ``patience`` epochs without improvement (0: never). A loss with a warm-up (``betti-matching``)
    is not yet itself before ``first_epoch``: no checkpoint and no patience then.
    """

    patience: int
    greater_is_better: bool
    first_epoch: int = 0
    best_score: float = -math.inf  # signed: higher is better
    best_epoch: int | None = None
    checkpoint: Any = None
    stale: int = 0

    def update(self, epoch: int, score: float, snapshot: Callable[[], Any]) -> bool:
        """Record one validation score (``snapshot()`` is taken on improvement); True when training should stop."""
        if epoch < self.first_epoch:
            return False
        signed = score if self.greater_is_better else -score
        if math.isfinite(score) and signed > self.best_score:
            self.best_score, self.best_epoch, self.stale = signed, epoch, 0
            self.checkpoint = snapshot()
            return False
        self.stale += 1
        return bool(self.patience) and self.stale >= self.patience


class Learner(Protocol):
    """What :func:`fit` trains: S members, each with a seed, a training split, a step state and a loss."""

    seeds: Sequence[int]
    states: Sequence[StepState]
    n_rows: int  # training rows, the same for every member

    def train_mode(self) -> None: ...
    def step(self, idx: torch.Tensor, members: list[int]) -> list[float]:
        """One optimisation step of ``members`` on their rows ``idx[s]``; each one's objective value."""
    def validate(self, members: list[int]) -> dict[int, float]:
        """The primary metric on validation of those of ``members`` that have a validation split."""
    def first_epoch(self, s: int) -> int: ...
    def snapshot(self, s: int) -> Any: ...
    def finish(self, s: int, checkpoint: Any) -> None:
        """Leave member ``s``'s model with ``checkpoint``'s weights (None: as trained)."""


def fit(learner: Learner, training: TrainingConfig, greater_is_better: bool, primary_metric: str,
        deadline: float | None = None) -> list[TrainResult | Exception]:
    """Train every member in place; each entry is that member's result or why it failed (``Diverged``).

    A member that diverges or stops early leaves the objective; at the end each model holds the weights of its
    best validation epoch (its final ones without a validation split).
    """
    S = len(learner.seeds)
    results: list[TrainResult | Exception] = [TrainResult() for _ in range(S)]
    stopping = [EarlyStopping(training.patience, greater_is_better, learner.first_epoch(s)) for s in range(S)]
    active = [True] * S
    start = time.perf_counter()
    for epoch in range(training.epochs):
        if not any(active):
            break
        learner.train_mode()
        for state in learner.states:
            state.epoch = epoch
        # members of one seed (its losses, stacked together) share its order: drawn once per seed
        order = {seed: batch_order(learner.n_rows, seed, epoch) for seed in dict.fromkeys(learner.seeds)}
        orders = torch.stack([order[seed] for seed in learner.seeds])
        totals, count = [0.0] * S, 0
        for idx in batches(orders, training.batch_size):
            if deadline is not None and time.monotonic() > deadline:
                raise TrialTimeout(f"trial ran past its time limit in epoch {epoch}")
            members = [s for s in range(S) if active[s]]
            if not members:
                break  # every member diverged in this epoch
            for s, value in zip(members, learner.step(idx, members), strict=True):
                if math.isfinite(value):
                    totals[s] += value * idx.shape[1]
                else:
                    results[s] = Diverged(f"training objective became {value} at epoch {epoch}, "
                                          f"step {learner.states[s].step}")
                    active[s] = False
            count += idx.shape[1]
            for state in learner.states:
                state.step += 1
        members = [s for s in range(S) if active[s]]
        for s in members:
            result = results[s]
            assert isinstance(result, TrainResult)
            result.epochs_run = epoch + 1
            result.record("train", "loss", epoch, totals[s] / max(count, 1))
        for s, score in learner.validate(members).items():
            results[s].record("val", primary_metric, epoch, score)  # type: ignore[union-attr]
            if stopping[s].update(epoch, score, lambda s=s: learner.snapshot(s)):
                active[s] = False
    elapsed = time.perf_counter() - start
    for s, result in enumerate(results):
        if isinstance(result, TrainResult):
            best = stopping[s].best_epoch
            result.best_epoch = best if best is not None else result.epochs_run - 1
            learner.finish(s, stopping[s].checkpoint)
            result.train_s = elapsed / S  # the members' training time, shared equally
    return results


class ModelLearner:
    """One model trained by its method: any task type, model and method (S = 1)."""

    def __init__(self, task: TaskType, model: nn.Module, prepared: Prepared, loss: nn.Module, method: Method,
                 training: TrainingConfig, seed: int, primary_metric: str, deadline: float | None = None,
                 metrics: tuple[str, ...] = ()) -> None:
        self.task, self.model, self.prepared, self.loss, self.method = task, model, prepared, loss, method
        self.seeds, self.states = [seed], [step_state(seed)]
        self.n_rows = len(prepared.train)
        self.primary_metric = primary_metric

        def teacher(other: nn.Module, other_loss: nn.Module, other_method: Method) -> TrainResult:
            # Same loop, configuration, seed and deadline: a teacher sees the same batches as the student.
            return train(task, other, prepared, other_loss, other_method, training=training, seed=seed,
                         primary_metric=primary_metric, deadline=deadline, metrics=metrics)

        context = MethodContext(task=task, training=training, seed=seed, primary_metric=primary_metric,
                                metrics=tuple(metrics), device=prepared.train.X.device, deadline=deadline, fit=teacher)
        # Setup runs before the optimiser is built, so parameters a method adds (an auxiliary head) are optimised too.
        method.setup(model, prepared, loss, self.states[0], context)
        params = [p for p in [*model.parameters(), *loss.parameters(), *method.parameters()] if p.requires_grad]
        self.optimizer = make_optimizer(params, training)
        # Dropout (and any draw without a generator) from the seed's own stream, whatever setup drew before.
        streams.seed_torch(seed, "dropout")

    def train_mode(self) -> None:
        self.model.train()

    def step(self, idx: torch.Tensor, members: list[int]) -> list[float]:
        rows = idx[0]
        X, y = self.prepared.train.X, self.prepared.train.y
        dev = rows.to(X.device)
        batch = Batch(self.task.augment(self.prepared, X[dev], rows, self.seeds[0], self.states[0].epoch), y[dev], rows)
        return [self.method.update(self.model, batch, self.loss, self.optimizer, self.states[0])]

    def validate(self, members: list[int]) -> dict[int, float]:
        if not members or self.prepared.val is None:
            return {}
        return {0: self.task.evaluate(self.model, self.prepared, "val", (self.primary_metric,))[self.primary_metric]}

    def first_epoch(self, s: int) -> int:
        return first_checkpoint(self.loss)

    def snapshot(self, s: int) -> Any:
        # the method's own trained state (AR2's ranker) belongs to the same epoch as the model's weights
        return copy.deepcopy((self.model.state_dict(), self.method.state_dict()))

    def finish(self, s: int, checkpoint: Any) -> None:
        if checkpoint is not None:
            weights, method_state = checkpoint
            self.model.load_state_dict(weights)
            self.method.load_state_dict(method_state)


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
    """Train one model in place; on return it holds the weights of the best validation epoch.

    Raises :class:`Diverged` when the objective becomes NaN or infinite, :class:`TrialTimeout` past ``deadline``.
    """
    learner = ModelLearner(task, model, prepared, loss, method, training, seed, primary_metric, deadline, metrics)
    (result,) = fit(learner, training, METRICS.get(primary_metric).greater_is_better, primary_metric, deadline)
    if isinstance(result, Exception):
        raise result
    return result
