"""Hyp-OC: one-class training in the Poincaré ball with a pseudo-negative Gaussian class.

Source: Narayan & Patel, "Hyp-OC: Hyperbolic One Class Classification for Face Anti-Spoofing", 2024,
arXiv 2404.14406; reference code ``Kartik-3004/hyp-oc`` (``loss.py`` ``TPC_loss_hyp``, ``models.py``
``hyp_classifier``, ``train.py``; read at commit 9c25c74). Written from the paper's formulas, not copied.

* Features f of the real batch come from the suite model's feature extractor (VGG-Face fc6 in the paper).
  Their mean updates μ_t = α·μ_{t−1} + (1 − α)·mean(f) (α = 0.8); B pseudo-negatives are drawn from
  N(μ_t, σ²I) (σ = 1) with the trial's generator.
* Real and pseudo-negative features pass through a small FC mapping (4096→…→128 in the paper), the Euclidean
  clipping x·min(1, r/‖x‖) (r = 2) and expmap₀ onto the ball of curvature −c (c = 0.1).
* ``hyp-ce``: the base loss (CE in the paper) on the hyperbolic MLR logits of Ganea, Bécigneul & Hofmann,
  "Hyperbolic Neural Networks", NeurIPS 2018 (Eq. 25): real = class 1, pseudo-negative = class 0.
* ``hyp-pc`` = hyp-ce + the pairwise-closeness term on real embeddings only,
  L_PC = (1/B)·Σ_{i<B/2} d_c(x_i, x_{i+B/2}), d_c(x, y) = (2/√c)·artanh(√c·‖(−x) ⊕_c y‖) (paper). The reference
  code uses arctan instead of artanh; ``distance="code"`` follows the code, the default follows the paper.
* The score of a test sample is its class-1 (real) probability under the hyperbolic classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodInfo, StepState, register_method
from lossbench.methods.common import seeded_linear
from lossbench.methods.heads import attach_forward
from lossbench.models.cnn import require_features

CITATION = "Narayan & Patel, Hyp-OC: Hyperbolic One Class Classification for Face Anti-Spoofing, 2024 (arXiv 2404.14406)"
ONE_CLASS = frozenset({"one-class", "binary"})  # binary: so base losses (declared binary) pair with it
EPS = 1e-5


def mobius_add(a: torch.Tensor, b: torch.Tensor, c: float) -> torch.Tensor:
    """a ⊕_c b = ((1 + 2c⟨a,b⟩ + c‖b‖²)a + (1 − c‖a‖²)b) / (1 + 2c⟨a,b⟩ + c²‖a‖²‖b‖²)."""
    ab = (a * b).sum(-1, keepdim=True)
    a2 = (a * a).sum(-1, keepdim=True)
    b2 = (b * b).sum(-1, keepdim=True)
    num = (1 + 2 * c * ab + c * b2) * a + (1 - c * a2) * b
    return num / (1 + 2 * c * ab + c**2 * a2 * b2).clamp_min(EPS)


def project(x: torch.Tensor, c: float) -> torch.Tensor:
    """Keep points strictly inside the ball of radius 1/√c (the boundary is at infinite distance)."""
    max_norm = (1 - 1e-3) / c**0.5
    norm = x.norm(dim=-1, keepdim=True).clamp_min(EPS)
    return torch.where(norm > max_norm, x / norm * max_norm, x)


def expmap0(u: torch.Tensor, c: float) -> torch.Tensor:
    """exp₀(u) = tanh(√c‖u‖)·u/(√c‖u‖)."""
    norm = u.norm(dim=-1, keepdim=True).clamp_min(EPS)
    return project(torch.tanh(c**0.5 * norm) * u / (c**0.5 * norm), c)


def to_ball(x: torch.Tensor, c: float, clip_r: float) -> torch.Tensor:
    """Euclidean feature clipping (Guo et al., CVPR 2022, as in the reference's ToPoincare), then expmap₀."""
    if clip_r > 0:
        norm = x.norm(dim=-1, keepdim=True).clamp_min(EPS)
        x = x * torch.clamp(clip_r / norm, max=1.0)
    return expmap0(x, c)


def poincare_distance(x: torch.Tensor, y: torch.Tensor, c: float, kind: str = "paper") -> torch.Tensor:
    """d_c(x, y) = (2/√c)·artanh(√c‖(−x) ⊕_c y‖); ``kind="code"`` uses arctan as the reference code does."""
    s = c**0.5 * mobius_add(-x, y, c).norm(dim=-1)
    if kind == "code":
        return 2 / c**0.5 * torch.atan(s)
    return 2 / c**0.5 * torch.atanh(s.clamp(max=1 - 1e-5))


class HyperbolicMLR(nn.Module):
    """Multinomial logistic regression in the Poincaré ball (Ganea et al. 2018, Eq. 25).

    logit_k(x) = (λ_{p_k}‖a_k‖/√c)·asinh(2√c⟨(−p_k) ⊕ x, a_k⟩ / ((1 − c‖(−p_k) ⊕ x‖²)‖a_k‖)),
    p_k = exp₀(p̃_k) and a_k = ã_k·(1 − c‖p_k‖²) (the tangent vector transported to p_k).
    """

    def __init__(self, dim: int, k: int, c: float, generator: torch.Generator) -> None:
        super().__init__()
        self.c = c
        bound = 1.0 / dim**0.5
        self.p = nn.Parameter(torch.empty(k, dim).uniform_(-bound, bound, generator=generator))
        self.a = nn.Parameter(torch.empty(k, dim).uniform_(-bound, bound, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.c
        p = expmap0(self.p, c)  # (K, d)
        conformal = 1 - c * (p * p).sum(-1, keepdim=True)
        a = self.a * conformal
        lam = 2 / conformal.squeeze(-1).clamp_min(EPS)  # λ_p
        a_norm = a.norm(dim=-1).clamp_min(EPS)
        diff = mobius_add(-p[None], x[:, None], c)  # (B, K, d)
        num = 2 * c**0.5 * (diff * a[None]).sum(-1)
        den = (1 - c * (diff * diff).sum(-1)).clamp_min(EPS) * a_norm[None]
        return lam * a_norm / c**0.5 * torch.asinh(num / den)


class HypClassifier(nn.Module):
    """feature extractor → FC mapping → ball → hyperbolic MLR (2 classes: pseudo-negative 0, real 1)."""

    def __init__(self, extractor: nn.Module, in_dim: int, dim: int, c: float, clip_r: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        self.c, self.clip_r = c, clip_r
        self.mapping = nn.Sequential(seeded_linear(in_dim, 2 * in_dim, generator), nn.ReLU(),
                                     seeded_linear(2 * in_dim, dim, generator))
        self.mlr = HyperbolicMLR(dim, 2, c, generator)
        self.extractor = [extractor]  # a list: the extractor belongs to the model already, not to this module

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        return to_ball(self.mapping(features), self.c, self.clip_r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlr(self.embed(self.extractor[0](x)))


class _HypOC(Method):
    pc_weight: float = 0.0

    def setup(self, model: nn.Module, prepared: object, loss: nn.Module, state: StepState, context: object = None
              ) -> None:
        extractor, head = require_features(model, self.info.name, "cnn or mlp")
        self.generator = state.generator if state.generator is not None else torch.Generator().manual_seed(0)
        self.net = HypClassifier(extractor, head.in_features, int(self.dim), float(self.c), float(self.clip_r),
                                 self.generator)
        first = next(model.parameters())
        self.net.to(device=first.device, dtype=first.dtype)  # float64 trials: the head follows the model
        self.mu: torch.Tensor | None = None
        attach_forward(model, "hyp_oc", self.net, self.net.forward)

    def objective(self, batch: Batch, loss: nn.Module) -> torch.Tensor:
        real = batch.x[batch.y == 1] if bool((batch.y == 1).any()) else batch.x
        f = self.net.extractor[0](real)
        batch_mean = f.detach().mean(dim=0)
        self.mu = batch_mean if self.mu is None else self.alpha * self.mu + (1 - self.alpha) * batch_mean
        noise = torch.randn(f.shape, generator=self.generator).to(f.device)
        negatives = self.mu + self.sigma * noise
        emb = self.net.embed(torch.cat([f, negatives]))
        labels = torch.cat([torch.ones(len(f)), torch.zeros(len(f))]).long().to(f.device)
        value = loss(self.net.mlr(emb), labels)
        if self.pc_weight > 0:
            real_emb = emb[: len(f)]
            half = len(real_emb) // 2
            if half:
                d = poincare_distance(real_emb[:half], real_emb[half : 2 * half], float(self.c), str(self.distance))
                value = value + self.pc_weight * d.sum() / len(real_emb)  # / B as in the reference code
        return value

    def update(self, model: nn.Module, batch: Batch, loss: nn.Module, optimizer: torch.optim.Optimizer,
               state: StepState) -> float:
        optimizer.zero_grad(set_to_none=True)
        value = self.objective(batch, loss)
        value.backward()
        optimizer.step()
        return float(value.detach())


PARAMS = {
    "c": Param(0.1, "curvature of the Poincaré ball", low=0, low_open=True),
    "alpha": Param(0.8, "momentum of the real-feature mean", low=0, high=1),
    "sigma": Param(1.0, "std of the pseudo-negative Gaussian", low=0, low_open=True),
    "dim": Param(16, "dimension of the hyperbolic embedding", low=2),
    "clip_r": Param(2.0, "Euclidean clipping radius before expmap0 (0: none)", low=0),
}


@register_method
class HypCE(_HypOC):
    """Hyperbolic MLR cross-entropy on real vs pseudo-negative features."""

    info = MethodInfo(
        name="hyp-ce",
        family="hyp-oc",
        tasks=ONE_CLASS,
        params=dict(PARAMS),
        citation=CITATION,
        summary="Hyp-OC's Hyp-CE: one-class training against a pseudo-negative Gaussian, hyperbolic MLR.",
    )
    distance = "paper"


@register_method
class HypPC(_HypOC):
    """Hyp-CE plus the pairwise-closeness term on real embeddings (Hyp-OC's full objective)."""

    info = MethodInfo(
        name="hyp-pc",
        family="hyp-oc",
        tasks=ONE_CLASS,
        params={**PARAMS, "distance": Param("paper", "artanh (paper) or atan (reference code)",
                                            choices=("paper", "code"))},
        citation=CITATION,
        summary="Hyp-OC: Hyp-CE + Hyp-PC (pairwise closeness of real samples in the Poincaré ball).",
    )
    pc_weight = 1.0
