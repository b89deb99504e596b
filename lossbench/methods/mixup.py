"""RankMixup: mixup used as a ranking signal for calibration (MRL and M-NDCG), in input space.

Source: Noh, Park, Lee, Ham, "RankMixup: Ranking-Based Mixup Training for Network Calibration", ICCV 2023,
arXiv 2308.11990. Checked against the reference code ``cvlab-yonsei/RankMixup`` ``calibrate/losses/rankmixup.py``
(``RankMixup_MRL.forward``/``get_logit_diff``/``get_conf_diff`` and ``RankMixup_MNDCG.get_indcg``).

Tabular adaptation: the image pipeline mixes images; here rows of the (standardised) feature matrix are mixed,
which is the same operation for an MLP. One λ ~ Beta(a, a) and one permutation per batch and per mixup, as in the
reference; both come from the trial's generator, so every base loss trained with the same seed sees the same mixes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodInfo, StepState, register_method
from lossbench.methods.common import BOTH, beta

CITATION = "Noh et al., RankMixup: Ranking-Based Mixup Training for Network Calibration, ICCV 2023 (arXiv 2308.11990)"


def mixup_batch(
    x: torch.Tensor, y: torch.Tensor, a: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """(mixed inputs, partner labels, λ, permutation): x̃ = λx + (1 − λ)x[perm]."""
    lam = beta(a, generator)
    perm = torch.randperm(len(y), generator=generator).to(y.device)
    return lam * x + (1 - lam) * x[perm], y[perm], lam, perm


def mixed_is_soft(y: torch.Tensor, y_partner: torch.Tensor, lam: float) -> torch.Tensor:
    """1 where the mixed target is not one-hot (different classes and 0 < λ < 1), else 0.

    The reference tests ``target == 1.0`` on the mixed target; comparing labels avoids the float round-off of λ + (1 − λ).
    """
    soft = (y != y_partner) & (0.0 < lam < 1.0)
    return soft.float()


def mrl_term(
    logits: torch.Tensor, logits_mix: torch.Tensor, mask: torch.Tensor, margin: float, use_prob: bool = False
) -> torch.Tensor:
    """Mixup ranking loss: mean_i m_i·relu(max f(x̃_i) − max f(x_i) + margin).

    The reference uses max logits (``get_logit_diff``); the probability version (``get_conf_diff``) is commented out
    there and offered here as ``use_prob``. The mean runs over all rows, masked ones included, as in the reference.
    """
    if use_prob:
        logits, logits_mix = F.softmax(logits, dim=1), F.softmax(logits_mix, dim=1)
    diff = logits_mix.max(dim=1).values - logits.max(dim=1).values
    return (mask * F.relu(diff + margin)).mean()


def mndcg_term(conf: torch.Tensor, conf_mix: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Mean over rows of 1 − NDCG for the raw sample (relevance 1, listed first) and M mixes.

    ``conf``: (B,) max softmax of the raw rows; ``conf_mix`` and ``relevance``: (B, M), relevance = max of the mixed
    target. Mixes are ordered by relevance (descending); ``NDCG = DCG/IDCG`` if IDCG > DCG else ``IDCG/DCG``,
    as in ``RankMixup_MNDCG.get_indcg``.
    """
    order = torch.argsort(relevance, dim=1, descending=True, stable=True)
    scores = torch.cat([conf[:, None], torch.gather(conf_mix, 1, order)], dim=1)
    rel = torch.cat([torch.ones_like(conf[:, None]), torch.gather(relevance, 1, order)], dim=1)
    discount = torch.log2(torch.arange(2, scores.shape[1] + 2, device=conf.device, dtype=conf.dtype))
    dcg = (scores / discount).sum(dim=1)
    idcg = (rel / discount).sum(dim=1)
    ndcg = torch.where(idcg > dcg, dcg / idcg, idcg / dcg)
    return (1.0 - ndcg).mean()


class _RankMixup(Method):
    def mixes(
        self, model: nn.Module, batch: Batch, state: StepState
    ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
        """``num_mixup`` (logits of the mixed batch, partner labels, λ), each with its own λ and permutation.

        All mixed batches go through the model in one forward pass, separate from the raw batch, as in the reference's
        ``forward_multimixup`` (this matters for batch norm statistics).
        """
        drawn = [mixup_batch(batch.x, batch.y, float(self.params["a"]), state.generator)
                 for _ in range(int(self.params["num_mixup"]))]
        logits = model(torch.cat([x_mix for x_mix, _, _, _ in drawn])).split(len(batch.y))
        return [(out, y_partner, lam) for out, (_, y_partner, lam, _) in zip(logits, drawn, strict=True)]


@register_method
class RankMixupMRL(_RankMixup):
    """``L = base(f(x), y) + α·MRL``: a mixed row should be less confident than the raw row by a margin."""

    info = MethodInfo(
        name="rankmixup-mrl",
        family="mixup",
        tasks=BOTH,
        params={
            "alpha": Param(0.1, "weight of the ranking term", low=0.0),
            "margin": Param(1.0, "margin on max logits (paper: 2.0 CIFAR, 1.0 Tiny-ImageNet)", low=0.0),
            "a": Param(1.0, "mixup Beta(a, a) parameter (paper: 2.0 CIFAR, 1.0 Tiny-ImageNet)", low=0.0, low_open=True),
            "num_mixup": Param(1, "mixed batches per step (term averaged over them)", low=1, high=16),
            "use_prob": Param(False, "rank max softmax probabilities instead of max logits"),
        },
        citation=CITATION,
        summary="CE plus a margin ranking loss: mixed inputs must be less confident than raw ones.",
    )

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        logits = model(batch.x)
        base = loss(logits, batch.y, **self.loss_kwargs(loss, batch, state))
        terms = [
            mrl_term(logits, logits_mix, mixed_is_soft(batch.y, y_partner, lam), float(self.params["margin"]),
                     bool(self.params["use_prob"]))
            for logits_mix, y_partner, lam in self.mixes(model, batch, state)
        ]
        return base + float(self.params["alpha"]) * torch.stack(terms).mean()


@register_method
class RankMixupMNDCG(_RankMixup):
    """``L = base(f(x), y) + α·(1 − M-NDCG)``: confidences of raw and mixed rows ranked by mixing ratio."""

    info = MethodInfo(
        name="rankmixup-mndcg",
        family="mixup",
        tasks=BOTH,
        params={
            "alpha": Param(0.1, "weight of the 1 − NDCG term", low=0.0),
            "a": Param(1.0, "mixup Beta(a, a) parameter (paper: 2.0 CIFAR, 1.0 Tiny-ImageNet)", low=0.0, low_open=True),
            "num_mixup": Param(3, "mixes per row (the paper's M)", low=1, high=16),
        },
        citation=CITATION,
        summary="CE plus 1 − NDCG of confidences of the raw row and M mixes, relevance = mixing ratio.",
    )

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        logits = model(batch.x)
        base = loss(logits, batch.y, **self.loss_kwargs(loss, batch, state))
        conf_mix, relevance = [], []
        for logits_mix, y_partner, lam in self.mixes(model, batch, state):
            conf_mix.append(F.softmax(logits_mix, dim=1).max(dim=1).values)
            same = (batch.y == y_partner).to(logits.dtype)
            # max of the mixed target λ·e_y + (1 − λ)·e_y': 1 for a same-class pair, else max(λ, 1 − λ)
            relevance.append(same + (1 - same) * max(lam, 1 - lam))
        conf = F.softmax(logits, dim=1).max(dim=1).values
        term = mndcg_term(conf, torch.stack(conf_mix, dim=1), torch.stack(relevance, dim=1))
        return base + float(self.params["alpha"]) * term


__all__ = ["RankMixupMNDCG", "RankMixupMRL", "mixed_is_soft", "mixup_batch", "mndcg_term", "mrl_term"]
