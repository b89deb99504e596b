"""The task-type contract: data → model → evaluation.

A task type is one module in ``lossbench/tasks`` registered in
:data:`TASK_TYPES`. The runner, the training loop and the store never change
when one is added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from lossbench.evaluation import Predictions, evaluate
from lossbench.registry import Registry
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec


@dataclass
class TensorSplit:
    """Inputs and integer targets of one split, as tensors."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> TensorSplit:
        return TensorSplit(self.X.to(device), self.y.to(device))


@dataclass
class Prepared:
    """A dataset made ready for one trial: seeded splits, fitted preprocessing."""

    train: TensorSplit
    val: TensorSplit | None
    test: TensorSplit
    n_features: int
    n_classes: int
    kind: str  # the loss task this trial needs: "binary", "multiclass", ...
    class_counts: list[int] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # recorded in the result row as columns
    embedding_dim: int | None = None  # output width of an embedding model (proxy-based losses size their proxies)
    #: Further construction context a loss may declare in ``needs``: what only this task knows (a new context item
    #: is a name in ``lossbench.losses.base.CONTEXT_NEEDS`` and an entry here).
    context: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> TensorSplit:
        part = {"train": self.train, "val": self.val, "test": self.test}[name]
        if part is None:
            raise ValueError(f"this trial has no {name!r} split")
        return part

    def to(self, device: torch.device | str) -> Prepared:
        self.train = self.train.to(device)
        self.val = self.val.to(device) if self.val is not None else None
        self.test = self.test.to(device)
        return self

    def loss_context(self, seed: int) -> dict[str, Any]:
        """Everything a loss may declare in ``needs`` at construction (``build_loss`` passes on what it declares)."""
        return {
            "class_counts": list(self.class_counts),
            "n_classes": self.n_classes,
            "n_samples": len(self.train),
            "seed": seed,
            "embedding_dim": self.embedding_dim,
            **self.context,
        }


Fail = Callable[..., Exception]  # fail(key, problem, fix) -> the error to raise


class TaskType:
    """Base class: subclasses implement prepare, build_model and predict, and declare what they predict."""

    name: str = ""
    description: str = ""
    loss_tasks: frozenset[str] = frozenset()
    #: The model family trials use when the suite's ``[model]`` names none.
    default_model: str = "mlp"
    #: The prediction kinds ``predict`` can make (see lossbench.metrics.base); metrics consuming others are refused.
    predictions: frozenset[str] = frozenset()
    #: ``from_outputs`` gives the predictions from the model's outputs on a split alone, so stacked seeds can be
    #: validated from one batched forward pass.
    predicts_from_outputs: bool = False

    #: The task runs its trials itself (:meth:`run_trial`) instead of the one training loop.
    runs_trials: bool = False

    def run_trial(self, spec: TrialSpec, row: dict[str, Any]) -> Any:
        """A whole trial, for a task that declares ``runs_trials``: a :class:`lossbench.trial.TrialResult` whose
        row holds the outcome columns (``row`` already holds the key columns; add data columns such as n_train)."""
        raise NotImplementedError(f"task {self.name!r} trains through the training loop")

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> Any:
        """The suite's ``[options]`` table as this task's options object (a frozen dataclass the task declares);
        raise ``fail(key, problem, fix)`` on a bad entry. Trials read it as ``spec.config.options``.

        The default takes no options.
        """
        if table:
            raise fail(next(iter(table)), f"task {self.name!r} takes no options.", "Remove the [options] table.")
        return None

    def check_data(self, data: Dataset) -> None:
        """Reject a dataset no trial of this task could use, once in the driver before any trial runs.

        Raise :class:`lossbench.errors.DataError`; the default accepts everything.
        """

    def check_options(self, data: Dataset, options: Any) -> None:
        """Reject, in the driver before any trial runs, options this dataset cannot serve (a class to forget that
        it does not have). Raise :class:`lossbench.errors.DataError`; the default accepts everything."""

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        raise NotImplementedError

    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        raise NotImplementedError

    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        """The model's predictions on ``split``, for each requested kind (a subset of ``predictions``): the
        arguments the metrics consuming that kind are called with. Called once per split and evaluation."""
        raise NotImplementedError

    def from_outputs(self, outputs: torch.Tensor, part: TensorSplit) -> Predictions:
        """The predictions of ``predict`` from the model's outputs on a whole split (``model(part.X)``), for a task
        that declares ``predicts_from_outputs``."""
        raise NotImplementedError(f"task {self.name!r} does not predict from outputs alone")

    def evaluate(self, model: nn.Module, prepared: Prepared, split: str, metrics: Sequence[str],
                 predictions: Predictions | None = None) -> dict[str, float]:
        """``metrics`` on ``split``: :func:`lossbench.evaluation.evaluate`, the same for every task type."""
        return evaluate(self, model, prepared, split, metrics, predictions)

    def examples(self, model: nn.Module, prepared: Prepared, spec: TrialSpec) -> dict[str, np.ndarray] | None:
        """A few test inputs with their targets and the trained model's predictions, kept for report plots.

        Called once after the final test evaluation; the store writes what it returns beside the trial's row.
        None (the default) keeps nothing.
        """
        return None

    def augment(self, prepared: Prepared, x: torch.Tensor, index: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
        """A training batch as the model sees it (data augmentation); identity unless a task overrides it.

        Called by the training loop; an override must draw from (seed, epoch, row index) only, so the same seed
        gives every loss and method the same augmented rows.
        """
        return x

    def supports(self, loss_tasks: frozenset[str], prepared: Prepared) -> tuple[bool, str]:
        """Whether a loss declared for ``loss_tasks`` applies; the reason is stored when not."""
        if prepared.kind in loss_tasks:
            return True, ""
        return False, f"declared for {', '.join(sorted(loss_tasks))}, not {prepared.kind} data"


TASK_TYPES: Registry[TaskType] = Registry("task", entry_point_group="lossbench.tasks")
