"""Training methods: what one optimisation step does.

Most trials use :class:`Plain` (forward, loss, backward, step). Methods from
the papers (mixup variants, distillation, meta re-weighting, post-hoc
calibration, training without back-propagation) change the step and are
registered in :data:`METHODS`, so a suite runs them like losses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from lossbench.config import TrainingConfig
from lossbench.errors import SpecError
from lossbench.losses.base import Param
from lossbench.registry import Registry


@dataclass
class Batch:
    """One mini-batch: inputs, integer targets and the row indices into the training split."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


@dataclass
class StepState:
    """Mutable per-trial state shared by the training loop and the method."""

    epoch: int = 0
    step: int = 0
    generator: torch.Generator | None = None  # seeded from the trial, for methods that draw randomness
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodContext:
    """What a method may need beyond the model and the data: passed to :meth:`Method.setup` by the loop.

    ``fit(model, loss, method)`` trains another model with the same loop, configuration and seed
    (a distillation teacher); it returns the loop's result and leaves the best weights in ``model``.
    """

    task: Any  # the TaskType (evaluate, predict); typed loosely to keep this module free of task imports
    training: TrainingConfig
    seed: int
    primary_metric: str
    metrics: tuple[str, ...] = ()
    device: torch.device | str = "cpu"
    deadline: float | None = None
    fit: Callable[[nn.Module, nn.Module, Method], Any] | None = None


@dataclass(frozen=True)
class MethodInfo:
    name: str
    family: str
    tasks: frozenset[str]
    params: Mapping[str, Param]
    citation: str
    summary: str = ""
    base_loss: str = "ce"  # the loss a method wraps unless the spec names another with base=
    version: str = "1"
    vectorizable: bool = False
    #: False: the method brings its own objective (the unlearning methods) and the base loss is not trained with,
    #: so ``tasks`` alone says where it applies.
    uses_base_loss: bool = True


class Method:
    """Base class of every training method; subclasses override :meth:`step` (or :meth:`update`)."""

    info: ClassVar[MethodInfo]

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.info.params)
        if unknown:
            raise SpecError(
                f"Method {self.info.name!r} has no parameter {sorted(unknown)[0]!r}.",
                f"Its parameters are: {', '.join(self.info.params) or 'none'}.",
            )
        self.params = {
            k: p.validate(self.info.name, k, params.get(k, p.default)) for k, p in self.info.params.items()
        }
        for k, v in self.params.items():
            setattr(self, k, v)

    def setup(
        self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState, context: MethodContext | None = None
    ) -> None:
        """Called once before training, before the optimiser exists (a distillation method trains its teacher here)."""

    def parameters(self) -> list[nn.Parameter]:
        """Trainable tensors the method adds (an auxiliary head); the loop's optimiser updates them too."""
        return []

    def loss_kwargs(self, loss: nn.Module, batch: Batch, state: StepState) -> dict[str, Any]:
        """Per-call extras the loss declared in ``info.needs``."""
        # the instance's needs: a wrapper loss (dro-kl) adds those of the loss it wraps
        needs = getattr(loss, "needs", frozenset())
        extras: dict[str, Any] = {}
        if "sample_index" in needs:
            extras["sample_index"] = batch.index
        if "epoch" in needs:
            extras["epoch"] = state.epoch
        return extras

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        """The training objective on one batch."""
        return loss(model(batch.x), batch.y, **self.loss_kwargs(loss, batch, state))

    def update(
        self,
        model: nn.Module,
        batch: Batch,
        loss: nn.Module,
        optimizer: torch.optim.Optimizer,
        state: StepState,
    ) -> float:
        """One optimisation step; returns the objective's value (NaN/inf is reported as divergence)."""
        optimizer.zero_grad(set_to_none=True)
        value = self.step(model, batch, loss, state)
        value.backward()
        optimizer.step()
        return float(value.detach())

    def state_dict(self) -> dict[str, Any]:
        """What the method trains beside the model (a ranker, its optimiser): the loop checkpoints it with the
        model at the best validation epoch and restores both, so the row's model and method come from one epoch.
        Costs and counters are not state: they cover the whole training."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def finish(self, model: nn.Module, prepared: Any) -> nn.Module:
        """Called after training; may return a wrapped model (post-hoc calibration)."""
        return model

    def record(self) -> dict[str, float]:
        """Extra metrics the method wants in the result row (for example a teacher's accuracy)."""
        return {}


METHODS: Registry[type[Method]] = Registry("method", entry_point_group="lossbench.methods")


def register_method(cls: type[Method]) -> type[Method]:
    METHODS.register(cls.info.name, cls, family=cls.info.family)
    return cls


@register_method
class Plain(Method):
    """Forward, loss, backward, optimiser step."""

    info = MethodInfo(
        name="plain",
        family="plain",
        tasks=frozenset(
            {"binary", "multiclass", "multilabel", "embedding", "query-document", "segmentation", "one-class"}
        ),
        params={},
        citation="",
        summary="The standard training step.",
        vectorizable=True,
    )
