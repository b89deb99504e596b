"""Standard classification baselines."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss

BOTH = frozenset({"binary", "multiclass"})


def balanced_weights(class_counts: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """sklearn's 'balanced' class weights, n / (K * n_k), from training counts."""
    counts = torch.as_tensor(class_counts, dtype=dtype, device=device).clamp_min(1)
    return counts.sum() / (len(counts) * counts)


@register_loss
class CrossEntropyLoss(LossBase):
    """Softmax cross-entropy."""

    info = LossInfo(
        name="ce",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={},
        citation="Standard softmax cross-entropy.",
        summary="Softmax cross-entropy.",
        formula="-log softmax(z)_y",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return F.cross_entropy(input, target, reduction="none")


@register_loss
class WeightedCrossEntropyLoss(LossBase):
    """Cross-entropy with balanced class weights computed from the training class counts."""

    info = LossInfo(
        name="weighted-ce",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={},
        citation="King & Zeng (2001), Logistic regression in rare events data; sklearn class_weight='balanced'.",
        summary="Cross-entropy weighted by n / (K n_k) from training counts.",
        formula="-w_y log softmax(z)_y, w_k = n / (K n_k)",
        needs=frozenset({"class_counts"}),
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        w = balanced_weights(self.context["class_counts"], input.device, input.dtype)
        return w[target] * F.cross_entropy(input, target, reduction="none")


@register_loss
class FocalLoss(LossBase):
    """Focal loss: down-weights well-classified examples."""

    info = LossInfo(
        name="focal",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={"gamma": Param(2.0, "focusing parameter", low=0.0)},
        citation="Lin et al. (2017), Focal Loss for Dense Object Detection, ICCV.",
        summary="Cross-entropy scaled by (1 - p_y)^gamma.",
        formula="-(1 - p_y)^gamma log p_y",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        logp = F.log_softmax(input, dim=1).gather(1, target[:, None]).squeeze(1)
        # 1 - p_y from log-space keeps the factor accurate when p_y is close to 1
        one_minus_p = -torch.expm1(logp)
        return -(one_minus_p.clamp_min(0) ** self.gamma) * logp
