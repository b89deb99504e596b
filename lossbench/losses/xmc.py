"""Multi-label ("extreme" classification) losses on query–label scores: the DEXML pair and two baselines.

Input contract ``scores``: (B, L) query–label scores (cosines of a dual encoder; each loss divides by its
temperature τ) with a (B, L) 0/1 target. Source: Gupta et al., "Dual-Encoders for Extreme Multi-Label
Classification", ICLR 2024; code ``nilesh2797/DEXML`` ``losses.py`` and ``utils/topk_utils.py``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossbench.errors import LossInputError
from lossbench.losses._embedding import NEG
from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss

ML = frozenset({"multilabel"})
DEXML = "Gupta et al., Dual-Encoders for Extreme Multi-Label Classification, ICLR 2024 (nilesh2797/DEXML)"


def _mean_over_positives(values: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1/|P(x)|) Σ_{l∈P(x)} values[x, l] per row; rows without positives give 0."""
    pos = target > 0
    return (values * pos).sum(1) / pos.sum(1).clamp_min(1)


@register_loss
class DecoupledSoftmax(LossBase):
    """Decoupled softmax: for each positive l, −log(e^{s_l} / (e^{s_l} + Σ_{j∉P(x)} e^{s_j})), s = score/τ.

    Other positives are left out of each positive's denominator (DEXML masks them); with one positive per row it
    equals softmax cross-entropy.
    """

    info = LossInfo(
        name="decoupled-softmax",
        family="xmc",
        tasks=ML,
        input="scores",
        params={"temperature": Param(0.05, "τ", low=0.0, low_open=True)},
        citation=DEXML,
        summary="Softmax per positive label with the other positives removed from the normaliser",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        s = input / self.temperature
        pos = target > 0
        neg_lse = torch.logsumexp(s.masked_fill(pos, NEG), dim=1, keepdim=True)
        return _mean_over_positives(torch.logaddexp(s, neg_lse) - s, target)


@register_loss
class MultilabelSoftmax(LossBase):
    """Softmax over all labels, averaged over the positives: −(1/|P|) Σ_{l∈P} log softmax(s)_l (DEXML ``softmax``)."""

    info = LossInfo(
        name="multilabel-softmax",
        family="xmc",
        tasks=ML,
        input="scores",
        params={"temperature": Param(0.05, "τ", low=0.0, low_open=True)},
        citation=DEXML,
        summary="Plain softmax with every positive in the normaliser (baseline of decoupled softmax)",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        s = input / self.temperature
        return _mean_over_positives(torch.logsumexp(s, dim=1, keepdim=True) - s, target)


@register_loss
class MultilabelBCE(LossBase):
    """One-vs-all binary cross-entropy on score/τ, mean over labels."""

    info = LossInfo(
        name="multilabel-bce",
        family="xmc",
        tasks=ML,
        input="scores",
        params={"temperature": Param(0.05, "τ", low=0.0, low_open=True)},
        citation="One-vs-all logistic loss (standard multi-label baseline)",
        summary="Independent logistic loss per label",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(input / self.temperature, target.to(input.dtype),
                                                  reduction="none").mean(1)


class _SoftTopKThreshold(torch.autograd.Function):
    """t(s) with Σ_j σ(α(s_j + t)) = k per row, by bisection; backward by implicit differentiation.

    dt/ds_i = −v_i / Σ_j v_j with v = α·σ'(α(s + t)) (DEXML ``utils/topk_utils.py``).
    """

    @staticmethod
    def forward(ctx: Any, s: torch.Tensor, k: float, alpha: float, n_iter: int) -> torch.Tensor:
        lo = -s.max(1).values - 10.0 / alpha
        hi = -s.min(1).values + 10.0 / alpha
        for _ in range(n_iter):
            mid = (lo + hi) / 2
            too_many = torch.sigmoid(alpha * (s + mid[:, None])).sum(1) > k
            hi = torch.where(too_many, mid, hi)
            lo = torch.where(too_many, lo, mid)
        t = (lo + hi) / 2
        ctx.save_for_backward(s, t)
        ctx.alpha = alpha
        return t

    @staticmethod
    def backward(ctx: Any, grad_t: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        s, t = ctx.saved_tensors
        p = torch.sigmoid(ctx.alpha * (s + t[:, None]))
        v = ctx.alpha * p * (1 - p)
        denom = v.sum(1, keepdim=True)
        dt_ds = torch.where(denom > 0, -v / denom.clamp_min(torch.finfo(v.dtype).tiny), torch.zeros_like(v))
        return grad_t[:, None] * dt_ds, None, None, None


def soft_topk_probabilities(s: torch.Tensor, k: float, alpha: float, n_iter: int = 64) -> torch.Tensor:
    """σ(α(s + t(s))): soft membership of the top k; each row sums to k."""
    t = _SoftTopKThreshold.apply(s, float(k), float(alpha), int(n_iter))
    return torch.sigmoid(alpha * (s + t[:, None]))


@register_loss
class SoftTopK(LossBase):
    """Soft top-k: −(1/|P|) Σ_{l∈P} log σ(α(s_l + t)), t chosen so the soft memberships sum to k.

    DEXML defaults k = 5, α = 2, τ = 0.05; DEXML bisects 32 times, here 64 (float64 gradient checks need t exact).
    """

    #: Fewer bisection steps leave t inexact: the implicit gradient is then the exact threshold's, not the value's.
    EXACT_STEPS = 64

    info = LossInfo(
        name="soft-topk",
        family="xmc",
        tasks=ML,
        input="scores",
        params={
            "k": Param(5, "soft top-k size (0 < k < number of labels)", low=1),
            "alpha": Param(2.0, "sigmoid sharpness α", low=0.0, low_open=True),
            "temperature": Param(0.05, "τ", low=0.0, low_open=True),
            "n_iter": Param(64, "bisection steps", low=1),
        },
        citation=DEXML,
        summary="Log-likelihood of positives under a differentiable top-k membership",
        batch_dependent=False,
        caveats="The gradient differentiates the exact threshold implicitly; with n_iter < 64 the computed "
        "threshold is coarser than float64 finite differences resolve, so the gradient is a surrogate there "
        "(DEXML's 32 steps included).",
    )

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__(reduction, **kwargs)
        self.exact_gradient = self.n_iter >= self.EXACT_STEPS

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        if self.k >= input.shape[1]:
            raise LossInputError(
                f"Loss 'soft-topk' needs k < the number of labels; got k={self.k} with {input.shape[1]} labels.",
                f"Use soft-topk:k={max(1, input.shape[1] // 3)}.",
            )
        s = input / self.temperature
        t = _SoftTopKThreshold.apply(s, float(self.k), float(self.alpha), int(self.n_iter))
        return _mean_over_positives(-F.logsigmoid(self.alpha * (s + t[:, None])), target)
