"""AnyLoss: confusion-matrix metrics turned into differentiable losses.

Follows the authors' code as recorded in the project's loss catalogue (``doheonhan/anyloss``
README and ``doheonhan/anyloss_extension`` ``AnyLoss_Code.ipynb``; the notebooks were not
re-read for this module): amplifying function
``A(p) = 1 / (1 + exp(-L (p - 0.5)))`` with L = 73, soft confusion matrix over the batch,
loss = 1 - metric. Two deliberate differences: counts are those of the batch (the original
divides accuracy, G-mean and balanced accuracy by the training-set size), and a small
epsilon keeps every ratio finite when a batch has no positives or no negatives.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench.losses.base import LossBase, LossInfo, Param, is_binary, softmax_rows
from lossbench.losses.registry import register_loss

CITATION = (
    "Han, Moniz & Chawla (2024), AnyLoss: Transforming Classification Metrics into Loss Functions, KDD."
)


def amplify(p: torch.Tensor, L: float) -> torch.Tensor:
    """The paper's amplifying function A(p) = 1 / (1 + exp(-L (p - 0.5)))."""
    return torch.sigmoid(L * (p - 0.5))


def ovr_scores(probs: torch.Tensor, L: float) -> torch.Tensor:
    """Amplified one-vs-rest decisions for K > 2: ``A_k = σ(L/2 · (p_k − max_{j≠k} p_j)) ≈ 1[k = argmax]``.

    For K = 2 this is exactly the paper's ``σ(L (p_1 − 0.5))``. Centring each class on its own
    decision boundary matters: the paper's ``σ(L (p_k − 0.5))`` starts near e^{-29} when the
    probabilities start near 1/K = 0.1, so with ten classes nothing would train.
    """
    top2 = probs.topk(2, dim=1).values
    others = torch.where(probs >= top2[:, :1], top2[:, 1:2], top2[:, :1])  # max over the other classes
    return torch.sigmoid(0.5 * L * (probs - others))


def soft_confusion(scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Soft TP, FN, FP, TN per column from amplified scores and 0/1 labels (batch counts).

    ``scores`` and ``y`` are (B, C): one column per one-vs-rest problem.
    """
    n = scores.new_tensor(float(scores.shape[0]))
    y1 = y.sum(0)
    s1 = scores.sum(0)
    tp = (y * scores).sum(0)
    return tp, y1 - tp, s1 - tp, n - y1 - s1 + tp


def decisions(input: torch.Tensor, target: torch.Tensor, L: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Amplified scores and 0/1 labels, one column per one-vs-rest problem (a single column when binary)."""
    probs = softmax_rows(input)
    if is_binary(input):
        return amplify(probs[:, 1:], L), target[:, None].to(input.dtype)
    # all K one-vs-rest problems at once: one column each
    return ovr_scores(probs, L), F.one_hot(target, input.shape[1]).to(input.dtype)


class _AnyLoss(LossBase):
    """Shared machinery: binary uses class 1 as positive; K > 2 macro-averages one-vs-rest."""

    eps = 1e-8

    def metric(self, tp: torch.Tensor, fn: torch.Tensor, fp: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        scores, y = decisions(input, target, self.L)
        values = self.metric(*soft_confusion(scores, y))
        return 1 - values.mean()


def _info(
    name: str,
    metric: str,
    formula: str,
    params: dict[str, Param] | None = None,
    caveats: str = "",
    batch_dependent: bool = True,
) -> LossInfo:
    return LossInfo(
        name=name,
        family="metric-surrogate",
        tasks=frozenset({"binary", "multiclass"}),
        input="logits",
        params={"L": Param(73.0, "amplifying function steepness", low=0.0, low_open=True), **(params or {})},
        citation=CITATION,
        summary=f"1 - soft {metric} from the amplified soft confusion matrix of the batch.",
        formula=formula,
        batch_dependent=batch_dependent,
        batch_level=batch_dependent,
        version="2",  # 2: K > 2 amplifies each class around its own decision boundary
        caveats="Uses batch counts (the reference code divides by the dataset size). "
        "K > 2 averages one-vs-rest metrics over all K classes (a lossbench extension), each class's "
        "decision amplified around its own boundary, σ(L/2·(p_k − max_{j≠k} p_j)); a class absent "
        "from the batch contributes its degenerate value. Noisy with small batches (the authors use "
        "batches of 5 % of the training set); large L can saturate the gradient. " + caveats,
    )


@register_loss
class AnyLossAccuracy(_AnyLoss):
    """1 - soft accuracy."""

    info = _info(
        "anyloss-acc",
        "accuracy",
        "1 - (TP + TN) / N = mean_i [1 - y_i A(p_i) - (1 - y_i)(1 - A(p_i))]",
        caveats="Soft accuracy is a sum of per-sample terms, so this one is per-sample and not "
        "batch-dependent; its mean equals 1 - (TP + TN) / N.",
        batch_dependent=False,
    )

    def metric(self, tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor) -> Tensor:
        return (tp + tn) / (tp + fn + fp + tn)

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        a, y = decisions(input, target, self.L)
        # per sample and column: 1 - [y A + (1 - y)(1 - A)] = y + A - 2 y A
        return (y + a - 2 * y * a).mean(1)


@register_loss
class AnyLossF1(_AnyLoss):
    """1 - soft F1 of the positive class."""

    info = _info("anyloss-f1", "F1", "1 - 2TP / (2TP + FN + FP)")

    def metric(self, tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor) -> Tensor:
        return 2 * tp / (2 * tp + fn + fp + self.eps)


@register_loss
class AnyLossFBeta(_AnyLoss):
    """1 - soft F-beta of the positive class."""

    info = _info(
        "anyloss-fbeta",
        "F-beta",
        "1 - (1 + beta^2) TP / ((1 + beta^2) TP + beta^2 FN + FP)",
        {
            "beta": Param(
                1.0,
                "weight of recall relative to precision (the authors use 0.5 and 2)",
                low=0.0,
                low_open=True,
            )
        },
    )

    def metric(self, tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor) -> Tensor:
        b2 = self.beta**2
        return (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp + self.eps)


@register_loss
class AnyLossGMean(_AnyLoss):
    """1 - soft geometric mean of sensitivity and specificity."""

    info = _info(
        "anyloss-gmean",
        "G-mean",
        "1 - sqrt(TP / (TP + FN) * TN / (TN + FP))",
        caveats="Keeps the paper's square root (the extension's sur_gmean drops it).",
    )

    def metric(self, tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor) -> Tensor:
        # eps inside the sqrt keeps the gradient finite when either rate is zero
        return (tp / (tp + fn + self.eps) * tn / (tn + fp + self.eps) + self.eps).sqrt()


@register_loss
class AnyLossBalancedAccuracy(_AnyLoss):
    """1 - soft balanced accuracy."""

    info = _info("anyloss-bacc", "balanced accuracy", "1 - (TP / (TP + FN) + TN / (TN + FP)) / 2")

    def metric(self, tp: Tensor, fn: Tensor, fp: Tensor, tn: Tensor) -> Tensor:
        return 0.5 * (tp / (tp + fn + self.eps) + tn / (tn + fp + self.eps))
