"""Comp-sum losses (Mao, Mohri & Zhong, ICML 2023) and their named members.

``l_tau = Phi^tau(u)`` with ``u = sum_{k != y} exp(z_k - z_y) = 1/p_y - 1`` and
``Phi^1(u) = log(1 + u)``, ``Phi^tau(u) = ((1 + u)^(1 - tau) - 1) / (1 - tau)`` otherwise.
Everything is computed from ``log p_y`` (log_softmax), so no ratio of exponentials overflows.
There is no official code; the tau -> loss mapping (0 sum-exp, 1 CE, 1 + q GCE, 2 MAE) was
checked numerically here, and GCE was checked against ``Optimization-AI/ICML2023_LDR``
``loss.py`` (``GCELoss``: ``(1 - p_y^q) / q``, q = 0.7 by default).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses.base import LossBase, LossInfo, Param, log_p_true
from lossbench.losses.registry import register_loss

CITATION = (
    "Mao, Mohri & Zhong (2023), Cross-Entropy Loss Functions: Theoretical Analysis and Applications, ICML."
)
GCE_CITATION = (
    "Zhang & Sabuncu (2018), Generalized Cross Entropy Loss for Training Deep Neural Networks with Noisy "
    "Labels, NeurIPS; code Optimization-AI/ICML2023_LDR loss.py (GCELoss)."
)
BOTH = frozenset({"binary", "multiclass"})
#: exp() argument above which the tau < 1 members are continued linearly (value and slope match),
#: so extreme logits give large but finite values and gradients instead of inf.
_EXP_CAP = 40.0


def _capped_expm1(x: torch.Tensor) -> torch.Tensor:
    """expm1(x) for x <= cap, continued by its tangent line above the cap."""
    inside = torch.expm1(x.clamp_max(_EXP_CAP))
    over = (x - _EXP_CAP).clamp_min(0)
    return inside + math.exp(_EXP_CAP) * over


def comp_sum(logp_y: torch.Tensor, tau: float) -> torch.Tensor:
    """Phi^tau as a function of log p_y: (p_y^(tau-1) - 1) / (1 - tau), or -log p_y at tau = 1."""
    if tau == 1:
        return -logp_y
    # (p_y^(tau-1) - 1) / (1 - tau) = expm1((1 - tau) * (-log p_y)) / (1 - tau)
    x = (1 - tau) * (-logp_y)
    if tau < 1:
        return _capped_expm1(x) / (1 - tau)
    return torch.expm1(x) / (1 - tau)  # x <= 0 here: bounded in [-1, 0]


def _logp_y(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return log_p_true(input, target)


@register_loss
class CompSumLoss(LossBase):
    """The comp-sum family; tau = 1 is computed exactly as cross-entropy."""

    info = LossInfo(
        name="comp-sum",
        family="comp-sum",
        tasks=BOTH,
        input="logits",
        params={
            "tau": Param(1.0, "family index: 0 sum-exp, 1 CE, (1, 2) GCE with q = tau - 1, 2 MAE", low=0.0)
        },
        citation=CITATION,
        summary="Composite-sum losses interpolating sum-exponential, CE, GCE and MAE.",
        formula="Phi^tau(u), u = sum_{k!=y} exp(z_k - z_y); Phi^1 = log(1+u), "
        "Phi^tau = ((1+u)^(1-tau) - 1)/(1-tau)",
        caveats="For tau < 1 the value grows like p_y^(tau-1); above exp(40) it is continued linearly "
        "to stay finite. tau >= 1 members are bounded and train slowly on clean data.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        if self.tau == 1:
            return F.cross_entropy(input, target, reduction="none")  # bit-identical to ce
        return comp_sum(_logp_y(input, target), self.tau)


@register_loss
class SumExpLoss(LossBase):
    """Sum-exponential loss: comp-sum at tau = 0, equal to (1 - p_y) / p_y."""

    info = LossInfo(
        name="sum-exp",
        family="comp-sum",
        tasks=BOTH,
        input="logits",
        params={},
        citation=CITATION,
        summary="Comp-sum at tau = 0: sum of exponentiated logit gaps.",
        formula="sum_{k!=y} exp(z_k - z_y) = 1/p_y - 1",
        caveats="Unbounded and exponential in the logit gap; continued linearly above exp(40).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return comp_sum(_logp_y(input, target), 0.0)


@register_loss
class GCELoss(LossBase):
    """Generalized cross-entropy (1 - p_y^q) / q: comp-sum at tau = 1 + q; q -> 0 gives CE."""

    info = LossInfo(
        name="gce",
        family="comp-sum",
        tasks=BOTH,
        input="logits",
        params={
            "q": Param(0.7, "exponent; q -> 0 gives CE, q = 1 gives MAE", low=0.0, high=1.0, low_open=True)
        },
        citation=GCE_CITATION,
        summary="Generalized cross-entropy, between CE (q -> 0) and MAE (q = 1).",
        formula="(1 - p_y^q) / q",
        caveats="No truncation (the reference's k = 0 default).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return -torch.expm1(self.q * _logp_y(input, target)) / self.q


@register_loss
class MAELoss(LossBase):
    """Mean absolute error on probabilities, 1 - p_y (= ||e_y - p||_1 / 2): comp-sum at tau = 2."""

    info = LossInfo(
        name="mae",
        family="comp-sum",
        tasks=BOTH,
        input="logits",
        params={},
        citation=CITATION + " Ghosh, Kumar & Sastry (2017), Robust Loss Functions under Label Noise for "
        "Deep Neural Networks, AAAI.",
        summary="1 - p_y; robust to label noise, slow to train.",
        formula="1 - p_y",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return -torch.expm1(_logp_y(input, target))
