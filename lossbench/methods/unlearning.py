"""The unlearning family as methods: ``retrain`` (the oracle) and one method per unlearning objective.

They apply to the ``unlearning`` task only (``tasks = {"unlearning"}``), which runs them itself: each starts from
the pre-trained model of its seed and takes the suite's budget of steps (see :mod:`lossbench.tasks.unlearning`).
The objectives, their formulas and sources are in :mod:`lossbench.unlearning.objectives`; here they only get a
registry entry, so ``lossbench list methods`` shows them and ``--loss npo:beta=0.5`` selects one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossbench.errors import UserError
from lossbench.methods.base import Batch, Method, MethodInfo, StepState, register_method
from lossbench.unlearning import OBJECTIVES, Objective, make_objective

TASKS = frozenset({"unlearning"})


class UnlearningMethod(Method):
    """A method of the unlearning task: never a training step of the classification loop."""

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        raise UserError(f"Method {self.info.name!r} runs on the unlearning task only.",
                        "Use it in a suite with task = \"unlearning\" (for example --suite unlearning).")

    def objective(self) -> Objective | None:
        """The unlearning objective with this method's parameters; None for ``retrain``."""
        return make_objective(self.info.name, **self.params)


@register_method
class Retrain(UnlearningMethod):
    """The oracle: the pre-training recipe and initial weights, trained on the retain rows only."""

    info = MethodInfo(
        name="retrain",
        family="unlearning",
        tasks=TASKS,
        params={},
        citation="Retraining from scratch without the forget set: the exact-unlearning reference of every paper",
        summary="The oracle: retrain from scratch on the retain rows (the reference every method is measured against).",
        uses_base_loss=False,
    )

    def objective(self) -> Objective | None:
        return None


def _method_for(name: str, objective: type[Objective]) -> type[UnlearningMethod]:
    info = objective.info
    attrs: dict[str, Any] = {
        "__doc__": info.summary,
        "info": MethodInfo(name=name, family="unlearning", tasks=TASKS, params=info.params, citation=info.citation,
                           summary=info.summary, version=info.version, uses_base_loss=False),
    }
    return type(f"Unlearn_{name.replace('-', '_')}", (UnlearningMethod,), attrs)


for _entry in OBJECTIVES:
    _cls = register_method(_method_for(_entry.name, _entry.obj))
    _cls.__module__ = __name__
    globals()[_cls.__name__] = _cls  # importable by name: instances pickle
