"""EnsLoss: a random calibrated loss-derivative per batch (Dai et al., ICML 2025)."""

from __future__ import annotations

from typing import Any

import torch

from lossbench import streams
from lossbench.errors import LossInputError
from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss


@register_loss
class EnsLoss(LossBase):
    """Doubly stochastic gradients from a fresh random convex, calibrated loss at every batch.

    Checked against ``statmlben/ensLoss`` ``losses.py`` (``ensLoss.forward``): draw
    ``g_j = -BC_inv(eps_j)``, ``eps_j ~ N(0, 1)``; sort ascending and clip at -1; give the most
    negative derivative to the smallest margin ``s_i = (2y - 1) z_i``; divide by the margin where
    ``s_i > 1`` (superlinear tail); subtract 1e-6; value ``g_i s_i`` with ``g`` detached.
    Differences from the reference: the sorted normal draws come from order statistics (same
    distribution as sorting ``randn``, without the sort; see :meth:`sorted_normals`), the binary
    logit is ``z = z_1 - z_0`` of a two-logit input, the draws come from the loss's own generator
    on the trial seed's "loss" stream (on the CPU, then moved to the input's device, so CPU and GPU runs
    draw the same numbers), and nothing is hard-coded to CUDA.
    """

    info = LossInfo(
        name="ensloss",
        family="stochastic-ensemble",
        tasks=frozenset({"binary"}),
        input="logits",
        params={
            "lam": Param(
                0.0, "Box-Cox parameter of the derivative distribution (0: -exp(N(0,1)))", low=-1.0, high=1.0
            )
        },
        citation="Dai et al. (2025), EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing "
        "Overfitting in Classification, ICML; code statmlben/ensLoss losses.py.",
        summary="Surrogate g_i * margin_i with random, rank-assigned, calibrated derivatives g.",
        formula="g_i s_i, s_i = (2y_i - 1)(z_1 - z_0), g = rank-matched sorted max(-BC_inv(N(0,1)), -1), "
        "g_i /= s_i if s_i > 1",
        batch_dependent=True,
        needs=frozenset({"seed"}),
        exact_gradient=False,
        caveats="Binary only. The value is a surrogate that can be negative: never log or compare it, "
        "only its gradient matters. The generator advances with every call, so rebuild the loss per "
        "trial.",
    )

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__(reduction, **kwargs)
        self.generator = streams.generator(int(self.context["seed"]), "loss", "ensloss")

    def bc_inv(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse Box-Cox transform: exp(x) at lam = 0, else max(1 + lam x, 0)^(1/lam)."""
        if self.lam == 0:
            return torch.exp(x)
        return (1 + self.lam * x).clamp_min(0) ** (1 / self.lam)

    def sorted_normals(self, n: int) -> torch.Tensor:
        """n i.i.d. N(0, 1) draws in ascending order, without a sort.

        The order statistics of n uniforms are the normalised partial sums of n + 1 standard
        exponentials; mapping them through the normal quantile function gives sorted normal
        draws with exactly the distribution of ``torch.randn(n).sort()`` in O(n) (the sort
        dominated the cost of this loss).
        """
        e = torch.empty(n + 1, dtype=torch.float64).exponential_(generator=self.generator)
        sums = e.cumsum(0)
        return torch.special.ndtri(sums[:-1] / sums[-1])

    def draw_derivatives(self, n: int) -> torch.Tensor:
        """Sorted (ascending) loss-derivatives -BC_inv(eps), clipped at -1."""
        # BC_inv is increasing, so descending eps gives ascending -BC_inv(eps)
        return (-self.bc_inv(self.sorted_normals(n).flip(0))).clamp_min(-1.0)

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        if input.shape[1] != 2:
            raise LossInputError(
                f"Loss 'ensloss' is binary only; got {input.shape[1]} classes.",
                "Use it on binary tasks (two logits, class 1 positive).",
            )
        margin = (2 * target.to(input.dtype) - 1) * (input[:, 1] - input[:, 0])
        draws = self.draw_derivatives(input.shape[0]).to(device=input.device, dtype=input.dtype)
        s = margin.detach()
        g = torch.empty_like(s)
        g[s.argsort()] = draws  # smallest margin gets the most negative derivative
        g = torch.where(s > 1, g / s.clamp_min(1), g) - 1e-6
        return g * margin
