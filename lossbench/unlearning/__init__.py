"""The unlearning family: forget-set selection, objectives, data attribution, the bounded-step loop.

Modules: :mod:`~lossbench.unlearning.forget` (which rows to forget), :mod:`~lossbench.unlearning.objectives` (GA, GD,
NPO, NPO-RT, fine-tuning, DMM, AdvUnlearn), :mod:`~lossbench.unlearning.laf` (LAF),
:mod:`~lossbench.unlearning.attribution` (DMM's datamodels), :mod:`~lossbench.unlearning.adversarial` (the PGD attack),
:mod:`~lossbench.unlearning.loop` (the unlearning steps). Metrics are in :mod:`lossbench.metrics.unlearning`.
docs/unlearning.md describes how the task uses them.

:data:`OBJECTIVES` is the family's own registry until the unlearning task registers them as methods.
"""

from __future__ import annotations

from typing import Any

from lossbench.registry import Registry
from lossbench.unlearning.laf import LabelAgnosticForgetting
from lossbench.unlearning.objectives import (
    NPO,
    AdvUnlearn,
    DatamodelMatching,
    Finetune,
    GradientAscent,
    GradientDifference,
    NPORetain,
    Objective,
    ObjectiveInfo,
)

OBJECTIVES: Registry[type[Objective]] = Registry("unlearning method", plural="methods")
for _cls in (GradientAscent, GradientDifference, NPO, NPORetain, Finetune, LabelAgnosticForgetting,
             DatamodelMatching, AdvUnlearn):
    OBJECTIVES.register(_cls.info.name, _cls)


def make_objective(name: str, **params: Any) -> Objective:
    """A fresh objective with validated parameters (``make_objective("npo", beta=0.5)``)."""
    return OBJECTIVES.get(name)(**params)


__all__ = ["OBJECTIVES", "Objective", "ObjectiveInfo", "make_objective"]
