"""Label distributionally robust losses LDR-KL and ALDR-KL (Zhu, Ying & Yang, ICML 2023).

Checked against the authors' ``Optimization-AI/ICML2023_LDR`` ``loss.py`` (``LDRLoss_V1``,
``ALDRLoss_V1``, ``get_diff_logits``), read from a stored copy of that file; defaults
lambda = 10, margin = 0.1 and alpha = 2 are the ones ``experiment.py`` and the README demo use.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossbench.errors import LossInputError
from lossbench.losses.base import LossBase, LossInfo, Param, outside, softmax_rows
from lossbench.losses.registry import register_loss

CITATION = (
    "Zhu, Ying & Yang (2023), Label Distributionally Robust Losses for Multi-class Classification: "
    "Consistency, Robustness and Adaptivity, ICML; code Optimization-AI/ICML2023_LDR loss.py."
)
BOTH = frozenset({"binary", "multiclass"})


def _normalise(input: torch.Tensor) -> torch.Tensor:
    """The reference code's optional rescaling: softplus, then divide by the per-sample mean.

    A row whose softplus underflows to 0 everywhere (every logit below about -104 in float32, -745 in
    float64) is left at 0 instead of 0/0, with a zero gradient; every other row is unchanged.
    """
    f = F.softplus(input)
    mean = f.mean(1, keepdim=True)
    return f / torch.where(mean > 0, mean, torch.ones_like(mean))


def margin_gaps(input: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """z_k - z_y + margin * 1[k != y], shape (B, K); zero in the true-class column."""
    gaps = input - input.gather(1, target[:, None]) + margin
    return gaps.scatter(1, target[:, None], 0.0)


def log_mean_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(x, dim=1) - math.log(x.shape[1])


@register_loss
class LDRKLLoss(LossBase):
    """LDR-KL: lambda * log mean_k exp((z_k - z_y + c 1[k != y]) / lambda).

    ``normalize=True`` reproduces ``LDRLoss_V1`` exactly (softplus, then divide the logits by
    their per-sample mean); the default applies the paper's closed form to the raw logits.
    """

    info = LossInfo(
        name="ldr-kl",
        family="ldr",
        tasks=BOTH,
        input="logits",
        params={
            "lambda": Param(
                10.0,
                "DRO temperature: -> 0 gives the Crammer-Singer hinge, -> inf the mean gap",
                low=0.0,
                low_open=True,
            ),
            "margin": Param(0.1, "margin c added to every wrong-class gap", low=0.0),
            "normalize": Param(False, "softplus the logits and divide by their mean, as the reference code"),
        },
        citation=CITATION,
        summary="Label-distributionally robust loss with a KL penalty: a smoothed multi-class hinge.",
        formula="lambda * log((1/K) sum_k exp((z_k - z_y + c 1[k!=y]) / lambda))",
        caveats="margin = 0 and lambda = 1 give CE - log K. For K = 2 the margin applies to a single "
        "competitor. The class default in the reference code is c = 2, lambda = 1; its experiments use "
        "c = 0.1, lambda = 10 (the defaults here).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        lam = self.params["lambda"]
        f = _normalise(input) if self.normalize else input
        return lam * log_mean_exp(margin_gaps(f, target, self.margin) / lam)


@register_loss
class ALDRKLLoss(LossBase):
    """Adaptive LDR-KL: one temperature per training sample, updated in closed form at each visit.

    As in ``ALDRLoss_V1``: ``p_i = normalise(softmax(f_i / Lambda_i) + 1e-5)``,
    ``Lambda_i <- lambda0 - lambda0 * KL(p_i || uniform) / (alpha log K)`` (detached, stored), then
    ``loss_i = Lambda_i * logmeanexp(gaps_i / Lambda_i) - alpha log K / (2 lambda0) (Lambda_i - lambda0)^2``.
    Because ``KL <= log K`` and ``alpha > 1``, every ``Lambda_i`` stays in
    ``(lambda0 (1 - 1/alpha), lambda0]``.
    """

    info = LossInfo(
        name="aldr-kl",
        family="ldr",
        tasks=BOTH,
        input="logits",
        params={
            "lambda0": Param(
                10.0, "reference temperature (initial value of every Lambda_i)", low=0.0, low_open=True
            ),
            "alpha": Param(
                2.0,
                "KL penalty strength; must exceed 1 so temperatures stay positive",
                low=1.0,
                low_open=True,
            ),
            "margin": Param(0.1, "margin c added to every wrong-class gap", low=0.0),
            "normalize": Param(
                False,
                "softplus the logits and divide by their mean (the reference's "
                "L1 rescaling, made safe near zero)",
            ),
        },
        citation=CITATION,
        summary="LDR-KL with a per-sample adaptive temperature kept in a state buffer.",
        formula="Lambda_i * log((1/K) sum_k exp(gap_ik / Lambda_i)) "
        "- alpha log K (Lambda_i - lambda0)^2 / (2 lambda0)",
        needs=frozenset({"sample_index", "n_samples"}),
        vectorizable=False,  # per-sample state: trained seed by seed, never stacked
        exact_gradient=False,
        caveats="Stateful: build one loss per run (the buffer ties it to one training set and seed). "
        "The value includes a negative penalty, so compare metrics, not loss values. The temperature "
        "update is detached, so autograd differs from finite differences by design.",
    )

    lambdas: torch.Tensor

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__(reduction, **kwargs)
        n = int(self.context["n_samples"])
        # a buffer, so it moves with .to(device) and is saved in state_dict
        self.register_buffer("lambdas", torch.full((n,), float(self.lambda0)))

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        index = torch.as_tensor(extras["sample_index"], device=self.lambdas.device).long().reshape(-1)
        if index.shape[0] != input.shape[0]:
            raise LossInputError(
                f"Loss 'aldr-kl' got {index.shape[0]} sample indices for a batch of {input.shape[0]}."
            )
        if outside(index, 0, self.lambdas.shape[0] - 1):
            raise LossInputError(
                f"Loss 'aldr-kl' got sample indices outside [0, {self.lambdas.shape[0] - 1}].",
                "Pass n_samples = the size of the training set and the dataset row indices.",
            )
        k = input.shape[1]
        log_k = math.log(k)
        f = _normalise(input) if self.normalize else input
        with torch.no_grad():
            old = self.lambdas[index].to(device=f.device, dtype=f.dtype)
            p = softmax_rows(f / old[:, None]) + 1e-5
            p = p / p.sum(1, keepdim=True)
            kl = (p * (p * k).log()).sum(1)
            new = self.lambda0 - self.lambda0 * kl / (self.alpha * log_k)
            self.lambdas[index] = new.to(self.lambdas.dtype)
        penalty = -self.alpha * log_k / (2 * self.lambda0) * (new - self.lambda0) ** 2
        gaps = margin_gaps(f, target, self.margin)
        return new * log_mean_exp(gaps / new[:, None]) + penalty
