"""AnyLoss: confusion-matrix metrics turned into differentiable losses."""

from __future__ import annotations

from typing import Any

import torch

from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss

CITATION = (
    "Han, Moniz & Chawla (2024), AnyLoss: Transforming Classification Metrics into Loss Functions, KDD."
)


def amplify(p: torch.Tensor, L: float) -> torch.Tensor:
    """The paper's amplifying function A(p) = 1 / (1 + exp(-L (p - 0.5)))."""
    return torch.sigmoid(L * (p - 0.5))


def soft_confusion(scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Soft TP, FN, FP, TN from amplified positive-class scores and 0/1 labels (batch counts)."""
    tp = (y * scores).sum()
    fn = (y * (1 - scores)).sum()
    fp = ((1 - y) * scores).sum()
    tn = ((1 - y) * (1 - scores)).sum()
    return tp, fn, fp, tn


class _AnyLoss(LossBase):
    """Shared machinery: binary uses class 1 as positive; K > 2 macro-averages one-vs-rest."""

    eps = 1e-8

    def metric(self, tp: torch.Tensor, fn: torch.Tensor, fp: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        probs = torch.softmax(input, dim=1)
        classes = [1] if input.shape[1] == 2 else range(input.shape[1])
        values = []
        for k in classes:
            scores = amplify(probs[:, k], self.L)
            y = (target == k).to(input.dtype)
            values.append(self.metric(*soft_confusion(scores, y)))
        return 1 - torch.stack(values).mean()


def _info(name: str, metric: str, formula: str, params: dict[str, Param] | None = None) -> LossInfo:
    return LossInfo(
        name=name,
        family="metric-surrogate",
        tasks=frozenset({"binary", "multiclass"}),
        input="logits",
        params={"L": Param(73.0, "amplifying function steepness", low=0.0, low_open=True), **(params or {})},
        citation=CITATION,
        summary=f"1 - soft {metric} from the amplified soft confusion matrix of the batch.",
        formula=formula,
        batch_dependent=True,
        batch_level=True,
        caveats="Uses batch counts (the reference code divides by the dataset size). "
        "K > 2 averages one-vs-rest metrics (a lossbench extension).",
    )


@register_loss
class AnyLossF1(_AnyLoss):
    """1 - soft F1 of the positive class."""

    info = _info("anyloss-f1", "F1", "1 - 2TP / (2TP + FN + FP)")

    def metric(self, tp, fn, fp, tn):  # type: ignore[no-untyped-def]
        return 2 * tp / (2 * tp + fn + fp + self.eps)
