"""The Z-loss (de Brébisson & Vincent, 2016): a shift- and scale-invariant spherical loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss


@register_loss
class ZLoss(LossBase):
    """Softplus of the standardised true-class logit.

    Checked against the authors' example ``pascal20100/factored_output_layer``
    ``example/timing_example.py`` (``z_loss``: ``softplus((mean - o_y) / (std + 1e-12))``,
    i.e. a = 1, b = 0). The standard deviation is the population one (divides by K).
    """

    info = LossInfo(
        name="z-loss",
        family="spherical",
        tasks=frozenset({"multiclass"}),
        input="logits",
        params={
            "a": Param(1.0, "slope of the softplus", low=0.0, low_open=True),
            "b": Param(0.0, "offset of the standardised true logit"),
        },
        citation="de Brébisson & Vincent (2016), The Z-loss: a shift and scale invariant classification "
        "loss belonging to the Spherical Family, arXiv:1604.08859.",
        summary="softplus(a (b - z_y)) / a on logits standardised per sample.",
        formula="softplus(a (b - (o_y - mean(o)) / std(o))) / a",
        caveats="K >= 3 only: for K = 2 the standardised logits are always ±1 (no gradient). "
        "Scores have no probability scale (log-loss/ECE of softmax(o) are meaningless). "
        "At exactly equal logits the standardisation is undefined: the value is softplus(a b) / a "
        "and the gradient is finite but huge (about 1/1e-12, as in the reference), so do not "
        "zero-initialise the output layer.",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        self.require_classes(input, 3, "Z-loss is degenerate for two classes; use ce for binary tasks.")
        centred = input - input.mean(1, keepdim=True)
        # eps inside the sqrt: finite gradient when all logits are equal (the reference adds 1e-12 to std)
        std = (centred.square().mean(1) + 1e-24).sqrt()
        z_y = centred.gather(1, target[:, None]).squeeze(1) / std
        return F.softplus(self.a * (self.b - z_y)) / self.a
