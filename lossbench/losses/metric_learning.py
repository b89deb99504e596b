"""Deep metric learning losses on (B, d) embeddings with (B,) integer class labels.

Pair and triplet losses use unit-normalised embeddings (cosine similarity, or the Euclidean distance
sqrt(2 - 2 cos) where the reference uses an Lp distance), as pytorch-metric-learning (PML) 2.8.1 does
(``KevinMusgrave/pytorch-metric-learning`` ``src/pytorch_metric_learning/losses``). Classifier-style
losses (ArcFace, CosFace, NormSoftmax, UNPG) and Proxy Anchor keep learnable class vectors inside the loss;
the training loop optimises ``loss.parameters()``.

Batches need several samples per class for the pair losses to see positives; a batch without a valid pair
contributes a graph-connected zero, as PML returns 0 then.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses._embedding import (
    NEG,
    Proxies,
    check_labels,
    cosine_matrix,
    euclidean_from_cosine,
    log1p_sum_exp,
    pair_masks,
    zero_like_graph,
)
from lossbench.losses.base import LossBase, LossInfo, Param, log_p_true
from lossbench.losses.registry import register_loss

EMB = frozenset({"embedding"})
PROXY_NEEDS = frozenset({"n_classes", "embedding_dim", "seed"})


def _avg_nonzero(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PML's AvgNonZeroReducer: the mean over the masked entries that are > 0."""
    v = values * mask
    count = (v > 0).sum()
    return v.sum() / count.clamp_min(1)


@register_loss
class Contrastive(LossBase):
    """Contrastive loss (PML ``ContrastiveLoss`` defaults: pos_margin 0, neg_margin 1, Lp distance).

    L = avg_{pos, >0} relu(d - m_pos) + avg_{neg, >0} relu(m_neg - d), d = ||z_i - z_j|| on unit vectors.
    """

    info = LossInfo(
        name="contrastive",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "pos_margin": Param(0.0, "positive pairs closer than this cost nothing", low=0.0),
            "neg_margin": Param(1.0, "negative pairs further than this cost nothing", low=0.0),
        },
        citation="Hadsell, Chopra, LeCun, Dimensionality Reduction by Learning an Invariant Mapping, CVPR 2006",
        summary="Pull same-class pairs together, push other pairs beyond a margin",
        batch_dependent=True,
        batch_level=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        pos, neg = pair_masks(target)
        d = euclidean_from_cosine(cosine_matrix(input))
        return (_avg_nonzero(F.relu(d - self.pos_margin), pos) + _avg_nonzero(F.relu(self.neg_margin - d), neg)
                + zero_like_graph(input))

    def metrix_term(self, anchors: torch.Tensor, labels: torch.Tensor, mixed: torch.Tensor,
                    w_pos: torch.Tensor, w_neg: torch.Tensor) -> torch.Tensor:
        """Metrix: each anchor–mixed pair is w_pos of a positive and w_neg of a negative (Metrix ``loss_posneg_mixup``)."""
        d = euclidean_from_cosine(cosine_matrix(anchors, mixed))
        values = w_pos * F.relu(d - self.pos_margin) + w_neg * F.relu(self.neg_margin - d)
        return values.sum() / ((w_pos + w_neg) > 0).sum().clamp_min(1)


@register_loss
class Triplet(LossBase):
    """Triplet margin loss: relu(d(a, p) - d(a, n) + m) on unit vectors.

    ``mining="batch-hard"``: the hardest positive and hardest negative per anchor (Hermans et al. 2017);
    ``"all"``: every valid triplet, averaged over the non-zero ones (PML ``TripletMarginLoss``).
    """

    info = LossInfo(
        name="triplet",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "margin": Param(0.2, "required gap between negative and positive distance", low=0.0),
            "mining": Param("batch-hard", "which triplets count", choices=("batch-hard", "all")),
        },
        citation="Schroff, Kalenichenko, Philbin, FaceNet, CVPR 2015; Hermans, Beyer, Leibe, In Defense of the "
        "Triplet Loss for Person Re-Identification, arXiv 1703.07737",
        summary="Anchors closer to positives than to negatives by a margin",
        batch_dependent=True,
        batch_level=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        pos, neg = pair_masks(target)
        d = euclidean_from_cosine(cosine_matrix(input))
        if self.mining == "batch-hard":
            valid = pos.any(1) & neg.any(1)
            hardest_pos = d.masked_fill(~pos, -1.0).max(1).values
            hardest_neg = d.masked_fill(~neg, 10.0).min(1).values
            values = F.relu(hardest_pos - hardest_neg + self.margin)
            return (values * valid).sum() / valid.sum().clamp_min(1) + zero_like_graph(input)
        values = F.relu(d[:, :, None] - d[:, None, :] + self.margin)  # [a, p, n]
        mask = pos[:, :, None] & neg[:, None, :]
        return _avg_nonzero(values, mask) + zero_like_graph(input)


@register_loss
class MultiSimilarity(LossBase):
    """Multi-Similarity loss with its pair miner (PML ``MultiSimilarityLoss`` + ``MultiSimilarityMiner``).

    Per anchor: (1/α)·log(1 + Σ_p e^{−α(S_p − λ)}) + (1/β)·log(1 + Σ_n e^{β(S_n − λ)}), cosine S, mean over anchors.
    Mining keeps negatives with S_n + ε > min S_p and positives with S_p − ε < max S_n (masks are not differentiated).
    """

    info = LossInfo(
        name="multi-similarity",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "alpha": Param(2.0, "positive scale", low=0.0, low_open=True),
            "beta": Param(50.0, "negative scale", low=0.0, low_open=True),
            "base": Param(0.5, "similarity offset λ", low=-1.0, high=1.0),
            "epsilon": Param(0.1, "miner margin; 0 disables mining", low=0.0),
        },
        citation="Wang, Han, Huang, Dong, Scott, Multi-Similarity Loss with General Pair Weighting for Deep Metric "
        "Learning, CVPR 2019",
        summary="Self- and relative-similarity weighted pair loss with hard-pair mining",
        batch_dependent=True,
        batch_level=True,
    )

    def masks(self, sim: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos, neg = pair_masks(target)
        if self.epsilon > 0:
            s = sim.detach()
            min_pos = s.masked_fill(~pos, 2.0).min(1, keepdim=True).values
            max_neg = s.masked_fill(~neg, -2.0).max(1, keepdim=True).values
            neg = neg & (s + self.epsilon > min_pos)
            pos = pos & (s - self.epsilon < max_neg)
        return pos, neg

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        sim = cosine_matrix(input)
        pos, neg = self.masks(sim, target)
        pos_term = log1p_sum_exp(-self.alpha * (sim - self.base), pos) / self.alpha
        neg_term = log1p_sum_exp(self.beta * (sim - self.base), neg) / self.beta
        return (pos_term + neg_term).mean()

    def metrix_term(self, anchors: torch.Tensor, labels: torch.Tensor, mixed: torch.Tensor,
                    w_pos: torch.Tensor, w_neg: torch.Tensor) -> torch.Tensor:
        """Metrix: mixed samples enter the positive log-sum-exp with weight λ and the negative one with 1 − λ."""
        sim = cosine_matrix(anchors, mixed)
        pos_term = torch.log1p((w_pos * torch.exp(-self.alpha * (sim - self.base))).sum(1)) / self.alpha
        neg = torch.exp((self.beta * (sim - self.base)).clamp_max(80.0))
        neg_term = torch.log1p((w_neg * neg).sum(1)) / self.beta
        return (pos_term + neg_term).mean()


@register_loss
class ProxyAnchor(LossBase):
    """Proxy Anchor loss with learnable proxies (PML ``ProxyAnchorLoss``: margin 0.1, alpha 32).

    (1/|P⁺|) Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{−α(s(x,p) − δ)}) + (1/|P|) Σ_{p∈P} log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p) + δ)}).
    Proxies train at ``proxy_lr_scale`` times the learning rate (the paper uses 100x; 10x suits lr 1e-3).
    """

    info = LossInfo(
        name="proxy-anchor",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "alpha": Param(32.0, "scale", low=0.0, low_open=True),
            "margin": Param(0.1, "margin δ", low=0.0),
            "proxy_lr_scale": Param(10.0, "proxy learning-rate multiplier", low=0.0, low_open=True),
        },
        citation="Kim, Kim, Cho, Kwak, Proxy Anchor Loss for Deep Metric Learning, CVPR 2020",
        summary="Proxies as anchors, all batch samples as positives/negatives of each proxy",
        batch_dependent=True,
        batch_level=True,
        needs=PROXY_NEEDS,
    )

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__(reduction, **kwargs)
        self.proxies = Proxies(self.context["n_classes"], self.context["embedding_dim"], self.context["seed"],
                               self.proxy_lr_scale)

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        check_labels(self.info.name, target, self.proxies.raw.shape[0])
        sim = cosine_matrix(input, self.proxies()).T  # (K, B)
        onehot = F.one_hot(target, sim.shape[0]).T.bool()
        with_pos = onehot.any(1)
        pos_term = log1p_sum_exp(-self.alpha * (sim - self.margin), onehot)
        neg_term = log1p_sum_exp(self.alpha * (sim + self.margin), ~onehot)
        return (pos_term * with_pos).sum() / with_pos.sum().clamp_min(1) + neg_term.mean()

    def metrix_term(self, anchors: torch.Tensor, labels: torch.Tensor, mixed: torch.Tensor,
                    w_pos: torch.Tensor, w_neg: torch.Tensor) -> torch.Tensor:
        """Metrix with proxies as anchors: ``w_pos``/``w_neg`` are (K, M) class-to-mixed weights."""
        sim = cosine_matrix(self.proxies(), mixed)
        pos = torch.exp((-self.alpha * (sim - self.margin)).clamp_max(80.0))
        neg = torch.exp((self.alpha * (sim + self.margin)).clamp_max(80.0))
        with_pos = (w_pos > 0).any(1)
        pos_term = torch.log1p((w_pos * pos).sum(1))
        neg_term = torch.log1p((w_neg * neg).sum(1))
        return (pos_term * with_pos).sum() / with_pos.sum().clamp_min(1) + neg_term.mean()


class _CosineHead(LossBase):
    """Softmax over scaled cosines to learnable class weights; subclasses set the target logit."""

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__(reduction, **kwargs)
        self.weight = Proxies(self.context["n_classes"], self.context["embedding_dim"], self.context["seed"])

    def cosines(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_labels(self.info.name, target, self.weight.raw.shape[0])
        return cosine_matrix(input, self.weight())

    def logits(self, cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        return -log_p_true(self.logits(self.cosines(input, target), target), target)


def arc_margin(cos: torch.Tensor, target: torch.Tensor, margin: float, monotone: bool = False) -> torch.Tensor:
    """cos(θ_y + m) in the target column.

    The plain form (``Jung-Jun-Uk/UNPG`` ``ArcFace``) turns back up once θ_y + m passes π, so a sample
    further from its class gets a larger target logit. ``monotone`` switches to cos θ_y − m·sin m for
    θ_y > π − m, as PML 2.8.1 ``ArcFaceLoss`` and insightface do, which keeps the target logit decreasing.
    """
    onehot = F.one_hot(target, cos.shape[1]).bool()
    theta = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    target_logit = torch.cos(theta + margin)
    if monotone:
        target_logit = torch.where(theta <= math.pi - margin, target_logit, cos - margin * math.sin(margin))
    return torch.where(onehot, target_logit, cos)


@register_loss
class ArcFace(_CosineHead):
    """ArcFace: CE(s·cos(θ_y + m), s·cos θ_j); PML ``ArcFaceLoss`` defaults m = 0.5 rad (28.6°), s = 64.

    ``form="monotone"`` (the default) equals PML 2.8.1 ``ArcFaceLoss`` and insightface at every angle: past
    θ_y = π − m the target logit is cos θ_y − m·sin m. ``form="plain"`` keeps cos(θ_y + m) everywhere (the
    formula as printed, and ``Jung-Jun-Uk/UNPG``'s head); the two differ only for θ_y > π − m.
    """

    info = LossInfo(
        name="arcface",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "margin": Param(0.5, "additive angular margin (radians)", low=0.0, high=1.5),
            "scale": Param(64.0, "logit scale s", low=0.0, low_open=True),
            "form": Param("monotone", "target logit past θ_y = π − m: cos θ_y − m·sin m (monotone, as PML and "
                          "insightface) or cos(θ_y + m) (plain)", choices=("monotone", "plain")),
        },
        citation="Deng, Guo, Xue, Zafeiriou, ArcFace: Additive Angular Margin Loss for Deep Face Recognition, CVPR 2019",
        summary="Angular-margin softmax over learnable class weights",
        formula="CE(s·ψ(θ_y), s·cos θ_j), ψ(θ) = cos(θ + m) for θ ≤ π − m, else cos θ − m·sin m (form=monotone)",
        needs=PROXY_NEEDS,
        version="2",  # 2: the monotone form by default (1 was the plain form)
    )

    def logits(self, cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.scale * arc_margin(cos, target, self.margin, monotone=self.form == "monotone")


@register_loss
class CosFace(_CosineHead):
    """CosFace: CE(s·(cos θ_y − m), s·cos θ_j); PML ``CosFaceLoss`` defaults m = 0.35, s = 64."""

    info = LossInfo(
        name="cosface",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "margin": Param(0.35, "additive cosine margin", low=0.0),
            "scale": Param(64.0, "logit scale s", low=0.0, low_open=True),
        },
        citation="Wang et al., CosFace: Large Margin Cosine Loss for Deep Face Recognition, CVPR 2018",
        summary="Cosine-margin softmax over learnable class weights",
        needs=PROXY_NEEDS,
    )

    def logits(self, cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.scale * (cos - self.margin * F.one_hot(target, cos.shape[1]))


@register_loss
class NormSoftmax(_CosineHead):
    """Normalised softmax: CE(cos θ / τ) (PML ``NormalizedSoftmaxLoss``, temperature 0.05)."""

    info = LossInfo(
        name="normsoftmax",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={"temperature": Param(0.05, "τ", low=0.0, low_open=True)},
        citation="Zhai, Wu, Classification is a Strong Baseline for Deep Metric Learning, BMVC 2019",
        summary="Softmax over cosines to learnable class weights",
        needs=PROXY_NEEDS,
    )

    def logits(self, cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cos / self.temperature


@register_loss
class Hyperspherical(_CosineHead):
    """Normalised softmax plus a penalty keeping the raw embeddings on the unit hypersphere.

    Pereira, Joly, Valduriez, Porto (arXiv 2102.03243) train a normalised softmax and constrain latent norms;
    only the abstract was available, so the penalty form w·(||z|| − 1)² and its weight are this project's choice.
    """

    info = LossInfo(
        name="hyperspherical",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "temperature": Param(0.05, "τ", low=0.0, low_open=True),
            "norm_weight": Param(0.1, "weight of (||z|| - 1)^2", low=0.0),
        },
        citation="Pereira, Joly, Valduriez, Porto, Hyperspherical embedding for novel class classification, "
        "arXiv 2102.03243",
        summary="Normalised softmax with a unit-norm constraint on embeddings",
        needs=PROXY_NEEDS,
        caveats="Norm-penalty form and weight unverified (abstract only).",
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        ce = -log_p_true(self.cosines(input, target) / self.temperature, target)
        norm = torch.sqrt((input * input).sum(1) + 1e-12)
        return ce + self.norm_weight * (norm - 1.0) ** 2


@register_loss
class UNPG(_CosineHead):
    """Unified negative pair generation on an ArcFace or CosFace head.

    In-batch negative-pair cosines S^n = {cos(f_i, f_j): y_i ≠ y_j, i < j} are filtered by box-and-whisker
    (keep s ∈ [Q1 − w·IQR, Q3 + w·IQR], bounds not differentiated) and appended to every row as extra negative
    logit columns: CE(s·[ψ(θ_y), cos θ_j, S^n′]). Checked against ``Jung-Jun-Uk/UNPG``
    ``recognition/models/head.py`` (``UNPG``, ``ArcFace``, ``CosFace``).
    """

    info = LossInfo(
        name="unpg",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "head": Param("cosface", "margin head", choices=("cosface", "arcface")),
            "margin": Param(0.35, "head margin (CosFace 0.35; use 0.5 with arcface)", low=0.0, high=1.5),
            "scale": Param(64.0, "logit scale s", low=0.0, low_open=True),
            "whisker": Param(1.5, "box-and-whisker width w", low=0.0),
        },
        citation="Jung et al., Unified Negative Pair Generation toward Well-discriminative Feature Space for Face "
        "Recognition, arXiv 2203.11593",
        summary="Margin softmax plus filtered in-batch negative pairs as extra logits",
        batch_dependent=True,
        needs=PROXY_NEEDS,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        cos = self.cosines(input, target)
        if self.head == "arcface":
            head = arc_margin(cos, target, self.margin)
        else:
            head = cos - self.margin * F.one_hot(target, cos.shape[1])
        sim = cosine_matrix(input)
        _, neg = pair_masks(target)
        upper = torch.triu(torch.ones_like(neg), diagonal=1)
        sn = sim[neg & upper]
        if sn.numel() > 0:
            q1, q3 = torch.quantile(sn.detach(), torch.tensor([0.25, 0.75], dtype=sn.dtype, device=sn.device))
            iqr = q3 - q1
            sn = sn[(sn >= q1 - self.whisker * iqr) & (sn <= q3 + self.whisker * iqr)]
            head = torch.cat([head, sn[None, :].expand(len(head), -1)], dim=1)
        return -log_p_true(self.scale * head, target)


@register_loss
class ProtoTriplet(LossBase):
    """Proto-Triplet: relu(d(z_i, c_{y_i}) − min_{k≠y_i} d(z_i, c_k) + m), prototypes c_k = batch class means.

    As ``proto_triplet_loss`` in ``maumruiz/FewShot-KidneyStones`` ``pro-fewshot/algorithms/icnn_loss.py``
    (Euclidean distance sqrt(·+1e-6), m = 0.5); here the batch is both support and query set and embeddings are
    unit-normalised first (``normalize=false`` keeps raw embeddings).
    """

    info = LossInfo(
        name="proto-triplet",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={
            "margin": Param(0.5, "margin m", low=0.0),
            "normalize": Param(True, "unit-normalise embeddings first"),
        },
        citation="Mendez-Ruiz et al., SuSana Distancia is all you need: Enforcing class separability in metric "
        "learning via two novel distance-based loss functions for few-shot image classification, arXiv 2305.09062",
        summary="Triplet loss against class prototypes",
        batch_dependent=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        z = F.normalize(input, dim=1) if self.normalize else input
        classes, inverse = torch.unique(target, return_inverse=True)
        onehot = F.one_hot(inverse, len(classes)).to(z.dtype)  # (B, C)
        protos = (onehot.T @ z) / onehot.sum(0)[:, None]
        d = torch.sqrt(((z[:, None, :] - protos[None, :, :]) ** 2).sum(-1) + 1e-6)
        own = (d * onehot).sum(1)
        if len(classes) < 2:
            return own * 0.0
        other = d.masked_fill(onehot.bool(), -NEG).min(1).values
        return F.relu(own - other + self.margin)


@register_loss
class ICNN(LossBase):
    """ICNN loss: −log((λ + γ)/2) from the k nearest neighbours of every batch sample.

    A re-implementation of ``modified_score`` in ``maumruiz/FewShot-KidneyStones``
    ``pro-fewshot/algorithms/icnn_loss.py`` on the whole batch (the reference's ``fullicnn`` variant):
    γ = mean share of same-class samples among the k neighbours; λ averages a same-class closeness term
    (distances divided by the nearest different-class neighbour's) and a normalised different-class distance term.
    Neighbour selection is not differentiated (gradient through distances only).
    """

    info = LossInfo(
        name="icnn",
        family="metric-learning",
        tasks=EMB,
        input="embeddings",
        params={"k": Param(4, "neighbours", low=1)},
        citation="Mendez-Ruiz et al., SuSana Distancia is all you need (arXiv 2305.09062); reference code "
        "maumruiz/FewShot-KidneyStones",
        summary="Neighbourhood class-separability score as a loss",
        batch_dependent=True,
        batch_level=True,
    )

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **_: Any) -> torch.Tensor:
        b = len(target)
        if b < 3:
            return zero_like_graph(input)
        eps = 1e-7
        k = b - 2 if self.k + 2 >= b else self.k
        ipc = k + 1
        z = F.normalize(input, dim=1)
        dist = torch.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1) + 1e-6)
        eye = torch.eye(b, dtype=torch.bool, device=z.device)
        idx = dist.detach().masked_fill(eye, float("inf")).topk(ipc, largest=False).indices
        d = dist.gather(1, idx)
        sc = (target[idx] == target[:, None]).to(z.dtype)
        dc = 1.0 - sc
        dcd = d * dc
        nn_dc = dcd.masked_fill(dc == 0, float("inf")).min(1).values
        nd = d / (nn_dc[:, None] + eps)
        nd = nd[:, :k]
        nd = nd / torch.clamp(nd.max(1, keepdim=True).values, min=1.0)
        sc_k = sc[:, :k]
        sc_counts = sc_k.sum(1)
        sc_lamb = 1 - ((nd * sc_k).sum(1) / (sc_counts + eps)).sum() / ((sc_counts > 0).sum() + eps)
        dcd_k, dc_k = dcd[:, :k], dc[:, :k]
        dcd_k = dcd_k / (dcd_k.max() + eps)
        dc_counts = dc_k.sum(1)
        dc_lamb = (dcd_k.sum(1) / (dc_counts + eps)).sum() / ((dc_counts > 0).sum() + eps)
        if bool((dc_k == 0).all()):
            dc_lamb = torch.abs(dc_lamb - 1.0)
        lamb = (sc_lamb + dc_lamb) / 2
        gamma = (sc_k.sum(1) / k).sum() / b if k + 2 < b else torch.ones((), dtype=z.dtype, device=z.device)
        score = ((lamb + gamma) / 2).clamp_min(1e-6)
        return -torch.log(score)
