"""Standard classification baselines: CE and its re-weighted, margin and prior-corrected variants."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses.base import LossBase, LossInfo, Param, class_priors, log_p_true, softmax_rows
from lossbench.losses.registry import register_loss

BOTH = frozenset({"binary", "multiclass"})
COUNTS = frozenset({"class_counts"})
CB_CITATION = (
    "Cui, Jia, Lin, Song & Belongie (2019), Class-Balanced Loss Based on Effective Number of Samples, CVPR."
)


def balanced_weights(class_counts: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """sklearn's 'balanced' class weights, n / (K * n_k), from training counts."""
    counts = torch.as_tensor(class_counts, dtype=dtype, device=device).clamp_min(1)
    return counts.sum() / (len(counts) * counts)


def class_balanced_weights(
    class_counts: Any, beta: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Cui et al.'s weights (1 - beta) / (1 - beta^n_k), rescaled to sum to K.

    Same normalisation as ``kaidic/LDAM-DRW`` ``cifar_train.py``. Computed in float64 because
    ``1 - beta**n`` loses every digit in float32 for beta = 0.9999 and small n.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64).clamp_min(1)
    if beta == 0:
        return torch.ones(len(counts), device=device, dtype=dtype)
    # 1 - beta^n = -expm1(n log beta), accurate for beta close to 1
    effective = -torch.expm1(counts * torch.log1p(torch.tensor(beta - 1.0, dtype=torch.float64)))
    w = (1 - beta) / effective
    w = w / w.sum() * len(counts)
    return w.to(device=device, dtype=dtype)


def focal_factor(one_minus_p: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p)^gamma with a zero gradient where 1 - p is 0.

    For 0 < gamma < 1 the derivative gamma (1 - p)^(gamma - 1) is infinite at p = 1, and autograd
    multiplies it by a zero to give NaN; the focal loss's true gradient tends to 0 there. Where
    1 - p > 0 the value and the gradient are those of the plain power.
    """
    if gamma == 0:
        return torch.ones_like(one_minus_p)
    positive = one_minus_p > 0
    safe = torch.where(positive, one_minus_p, torch.ones_like(one_minus_p))
    return torch.where(positive, safe**gamma, torch.zeros_like(one_minus_p))


def _focal_term(logp: torch.Tensor, gamma: float) -> torch.Tensor:
    if gamma == 0:
        return -logp
    # 1 - p_y from log-space keeps the factor accurate when p_y is close to 1
    return -focal_factor(-torch.expm1(logp), gamma) * logp


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
        citation="King & Zeng (2001), Logistic regression in rare events data; "
        "sklearn class_weight='balanced'.",
        summary="Cross-entropy weighted by n / (K n_k) from training counts.",
        formula="-w_y log softmax(z)_y, w_k = n / (K n_k)",
        needs=COUNTS,
        caveats="The mean divides by the batch size; torch's CrossEntropyLoss(weight=w) divides by the "
        "batch's sum of weights instead, which makes it batch-dependent.",
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
        citation="Lin, Goyal, Girshick, He & Dollár (2017), Focal Loss for Dense Object Detection, ICCV.",
        summary="Cross-entropy scaled by (1 - p_y)^gamma.",
        formula="-(1 - p_y)^gamma log p_y",
        caveats="Softmax version without the alpha balance term (alpha = 0.25 belongs to the sigmoid "
        "detection variant).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return _focal_term(log_p_true(input, target), self.gamma)


_CB_BETA = Param(
    0.9999, "effective-number decay (0 gives uniform weights)", low=0.0, high=1.0, high_open=True
)


@register_loss
class ClassBalancedCELoss(LossBase):
    """Class-balanced softmax cross-entropy.

    Weights follow ``kaidic/LDAM-DRW`` (``cifar_train.py``, ``train_rule='Reweight'``):
    ``w_k = (1 - beta) / (1 - beta^n_k)``, normalised so that ``sum_k w_k = K``.
    """

    info = LossInfo(
        name="cb-ce",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={"beta": _CB_BETA},
        citation=CB_CITATION,
        summary="Cross-entropy weighted by the inverse effective number of samples per class.",
        formula="-w_y log p_y, w_k ∝ (1 - beta) / (1 - beta^n_k), sum_k w_k = K",
        needs=COUNTS,
        caveats="Per-sample weights, batch mean (torch's weight= argument would divide by the sum "
        "of weights).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        w = class_balanced_weights(self.context["class_counts"], self.beta, input.device, input.dtype)
        return w[target] * F.cross_entropy(input, target, reduction="none")


@register_loss
class ClassBalancedFocalLoss(LossBase):
    """Class-balanced focal loss (softmax form): the CB weights times the focal term."""

    info = LossInfo(
        name="cb-focal",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={"beta": _CB_BETA, "gamma": Param(1.0, "focusing parameter (paper grid 0.5, 1, 2)", low=0.0)},
        citation=CB_CITATION,
        summary="Focal loss weighted by the inverse effective number of samples per class.",
        formula="-w_y (1 - p_y)^gamma log p_y, w_k ∝ (1 - beta) / (1 - beta^n_k), sum_k w_k = K",
        needs=COUNTS,
        caveats="Softmax version; the paper's best CIFAR runs use the sigmoid version.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        w = class_balanced_weights(self.context["class_counts"], self.beta, input.device, input.dtype)
        return w[target] * _focal_term(log_p_true(input, target), self.gamma)


@register_loss
class LDAMLoss(LossBase):
    """Label-distribution-aware margin loss with optional deferred re-weighting (DRW).

    Checked against ``kaidic/LDAM-DRW`` ``losses.py`` (``LDAMLoss``): margins
    ``m_k = n_k^{-1/4}`` rescaled so the largest is ``max_m``, subtracted from the true
    logit, then CE on ``s`` times the logits. DRW follows ``cifar_train.py``
    (``train_rule='DRW'``: ``betas = [0, 0.9999]``, switch at epoch 160 of 200): uniform
    weights before ``drw_epoch``, class-balanced weights (beta = 0.9999) from it on.
    """

    info = LossInfo(
        name="ldam",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={
            "max_m": Param(0.5, "largest class margin", low=0.0),
            "s": Param(30.0, "logit scale", low=0.0, low_open=True),
            "drw_epoch": Param(-1, "epoch at which class-balanced re-weighting starts; -1 never", low=-1),
        },
        citation="Cao, Wei, Gaidon, Arechiga & Ma (2019), Learning Imbalanced Datasets with "
        "Label-Distribution-Aware Margin Loss, NeurIPS; code kaidic/LDAM-DRW.",
        summary="CE on s * (z - m_y e_y) with margins m_k ∝ n_k^(-1/4); optional DRW.",
        formula="-w_y log softmax(s (z - m_y e_y))_y, m_k = max_m n_k^(-1/4) / max_j n_j^(-1/4)",
        needs=frozenset({"class_counts", "epoch"}),
        caveats="Needs the epoch in every call (for DRW). With DRW the mean divides by the batch size, "
        "not by the sum of weights as the reference's CrossEntropyLoss(weight=w) does.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        counts = torch.as_tensor(self.context["class_counts"], dtype=input.dtype, device=input.device)
        m = counts.clamp_min(1) ** -0.25
        m = m * (self.max_m / m.max())
        # subtract the margin from the true-class logit only
        shifted = input - F.one_hot(target, input.shape[1]).to(input.dtype) * m[target, None]
        loss = F.cross_entropy(self.s * shifted, target, reduction="none")
        if self.drw_epoch >= 0 and int(extras["epoch"]) >= self.drw_epoch:
            w = class_balanced_weights(self.context["class_counts"], 0.9999, input.device, input.dtype)
            loss = w[target] * loss
        return loss


@register_loss
class LabelSmoothingLoss(LossBase):
    """Cross-entropy against the smoothed target (1 - epsilon) e_y + epsilon / K (torch's convention)."""

    info = LossInfo(
        name="label-smoothing",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={
            "epsilon": Param(0.1, "smoothing mass spread uniformly over the K classes", low=0.0, high=1.0)
        },
        citation="Szegedy, Vanhoucke, Ioffe, Shlens & Wojna (2016), Rethinking the Inception Architecture "
        "for Computer Vision, CVPR.",
        summary="CE with uniformly smoothed targets.",
        formula="-(1 - eps) log p_y - (eps / K) sum_k log p_k",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return F.cross_entropy(input, target, reduction="none", label_smoothing=self.epsilon)


@register_loss
class LogitAdjustedLoss(LossBase):
    """Logit-adjusted CE: adds tau log pi to the logits during training only."""

    info = LossInfo(
        name="logit-adjust",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={"tau": Param(1.0, "adjustment strength", low=0.0)},
        citation="Menon, Jayasumana, Rawat, Jain, Veit & Kumar (2021), Long-tail learning via logit "
        "adjustment, ICLR.",
        summary="CE on logits shifted by tau log(class prior).",
        formula="-log softmax(z + tau log pi)_y, pi_k = n_k / n",
        needs=COUNTS,
        caveats="Predict with the raw logits (the adjustment is a training-time correction).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        log_pi = class_priors(self.context["class_counts"], input.device, input.dtype).log()
        return F.cross_entropy(input + self.tau * log_pi, target, reduction="none")


@register_loss
class BalancedSoftmaxLoss(LossBase):
    """Balanced softmax: CE on z + log pi (logit adjustment with tau = 1)."""

    info = LossInfo(
        name="balanced-softmax",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={},
        citation="Ren, Yu, Ma, Zhao, Yi & Li (2020), Balanced Meta-Softmax for Long-Tailed Visual "
        "Recognition, NeurIPS.",
        summary="CE on logits shifted by log(class prior); equals logit-adjust at tau = 1.",
        formula="-log softmax(z + log pi)_y",
        needs=COUNTS,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        log_pi = class_priors(self.context["class_counts"], input.device, input.dtype).log()
        return F.cross_entropy(input + log_pi, target, reduction="none")


@register_loss
class MSEOneHotLoss(LossBase):
    """Squared error between the raw logits and the one-hot target."""

    info = LossInfo(
        name="mse-onehot",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={},
        citation="Hui & Belkin (2021), Evaluation of Neural Architectures Trained with Square Loss vs "
        "Cross-Entropy in Classification Tasks, ICLR; Dang et al. (2023), Neural Collapse in Deep Linear "
        "Networks, ICML.",
        summary="Half the squared distance between logits and the one-hot label.",
        formula="||z - e_y||^2 / 2",
        caveats="Scores are not probabilities; calibration metrics on softmax(z) need care.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        # ||z||^2 - 2 z_y + 1 without materialising the one-hot matrix
        z_y = input.gather(1, target[:, None]).squeeze(1)
        return 0.5 * ((input * input).sum(1) - 2 * z_y + 1)


@register_loss
class BrierLoss(LossBase):
    """Multi-class Brier score of the softmax probabilities."""

    info = LossInfo(
        name="brier",
        family="baselines",
        tasks=BOTH,
        input="logits",
        params={},
        citation="Brier (1950), Verification of forecasts expressed in terms of probability, Monthly "
        "Weather Review.",
        summary="Squared distance between softmax(z) and the one-hot label.",
        formula="||softmax(z) - e_y||^2",
        caveats="Ranges over [0, 2]; for K = 2 it is twice the binary Brier score.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        p = softmax_rows(input)
        p_y = p.gather(1, target[:, None]).squeeze(1)
        return (p * p).sum(1) - 2 * p_y + 1
