"""Segmentation training methods: multi-rater PULASki and source-free domain adaptation (entropy + KL prior).

``pulaski``: Chatterjee et al., "Learning inter-rater variability using statistical distances to improve
probabilistic segmentation", arXiv 2312.15686; reference ``soumickmj/PULASki`` (``pipeline.py`` builds a
GeomLoss ``SamplesLoss``; the objective is w_seg·D(samples, rater masks) + w_lat·KL(q(z|x,y) ‖ p(z|x))).
Each segmentation is one point in R^{HW}; D compares the N predicted samples with the R rater masks of
each image. Needs the ``prob-unet`` model family, a dataset with ``raters=R`` and geomloss (the [seg] extra).

``sfda-entropy-kl``: Bateson, Kervadec, Dolz, Lombaert & Ben Ayed, "Source-Free Domain Adaptation for Image
Segmentation", MedIA 2022 (arXiv 2108.03152); reference ``mathilde-b/SFDA`` ``losses.py`` ``EntKLProp``:
L = -sum nu_c p log p / sum p  +  (1/B) sum_b sum_c tau_hat_bc log(tau_hat_bc / tau_c), i.e. KL(tau_hat ‖ tau)
from the predicted class ratio tau_hat to the prior tau. tau_hat is ``utils.norm_soft_size`` with power 1, the
size function of every experiment in the repository's makefiles: per image, the sum over pixels of p / max_c p,
renormalised over classes (not the mean of p). Logarithms take + 1e-10 as in the reference.
The loop trains on the labelled source images with the base loss; ``finish`` then adapts on the
unlabelled target images only, and the trial tests on target images. The prior tau is the source
training foreground fraction (the paper uses anatomical knowledge; no target label is used).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossbench import streams
from lossbench.errors import UserError
from lossbench.losses.base import Param
from lossbench.losses.segmentation import foreground_prob
from lossbench.methods.base import Batch, Method, MethodContext, MethodInfo, StepState, register_method

SEG = frozenset({"segmentation"})


def sinkhorn_samples_loss(blur: float) -> Any:
    """GeomLoss's debiased Sinkhorn divergence (p = 2, eps = blur^2), as the reference builds it.

    There is no fallback solver: GeomLoss's value depends on its epsilon-scaling schedule (up to 2% from the
    converged divergence at blur 0.05), so another solver would make results depend on what is installed.
    """
    try:
        from geomloss import SamplesLoss  # lazy: the [seg] extra
    except ImportError:
        raise UserError("Method 'pulaski' needs the geomloss package.",
                        "Install it with pip install 'lossbench[seg]' (or pip install geomloss).") from None
    return SamplesLoss("sinkhorn", p=2, blur=blur, debias=True, backend="tensorized")


def samples_distance(pred: torch.Tensor, raters: torch.Tensor, blur: float) -> torch.Tensor:
    """D between N predicted maps and R rater masks per image: (B, N, H, W), (B, R, H, W) → (B,)."""
    return sinkhorn_samples_loss(blur)(pred.flatten(2), raters.flatten(2).to(pred.dtype))


@register_method
class Pulaski(Method):
    """Probabilistic U-Net trained with a Sinkhorn distance between sample sets and rater masks plus the latent KL."""

    info = MethodInfo(
        name="pulaski",
        family="multi-rater",
        tasks=SEG,
        params={
            "samples": Param(0, "decoder samples per image (0: as many as raters)", low=0, high=32),
            "blur": Param(0.05, "Sinkhorn blur (eps = blur^2)", low=0.0, low_open=True),
            "w_lat": Param(1.0, "weight of KL(q || p) on the latent", low=0.0),
        },
        citation="Chatterjee et al., Learning inter-rater variability using statistical distances to improve "
                 "probabilistic segmentation, arXiv 2312.15686",
        summary="Sinkhorn distance between predicted samples and rater masks + latent KL (probabilistic U-Net).",
        base_loss="dice",
        version="2",  # 2: geomloss or a refusal (1 fell back to a solver computing another divergence)
    )

    def setup(self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState,
              context: MethodContext | None = None) -> None:
        sinkhorn_samples_loss(float(self.blur))  # refuse before training when geomloss is missing
        if not hasattr(model, "sample"):
            raise UserError("Method 'pulaski' needs a probabilistic model.", 'Set [model] family = "prob-unet".')
        raters = prepared.info.get("raters")
        if raters is None:
            raise UserError("Method 'pulaski' needs several rater masks per image.",
                            "Use a dataset with raters=, for example seg:vessels#raters=3.")
        self.raters = raters
        self.kl_mean: torch.Tensor | float = 0.0

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        r = self.raters[batch.index].to(batch.x.device)  # (B, R, H, W)
        n = int(self.samples) or r.shape[1]
        # the posterior sees one rater's mask per image, drawn from the trial's generator
        pick = torch.randint(0, r.shape[1], (len(r),), generator=state.generator)
        cond = r[torch.arange(len(r)), pick.to(r.device)]
        logits, kl = model.sample(batch.x, n, cond, state.generator)
        dist = samples_distance(torch.sigmoid(logits), r, float(self.blur))
        kl_mean = kl.mean()
        self.kl_mean = kl_mean.detach()  # read once, in record(): no host sync in the step
        return dist.mean() / r[0, 0].numel() + self.w_lat * kl_mean

    def record(self) -> dict[str, float]:
        return {"latent_kl": float(self.kl_mean)}


def class_ratio(p: torch.Tensor) -> torch.Tensor:
    """Predicted class ratio per image (B, C) from probability maps (B, C, H, W): ``norm_soft_size``, power 1."""
    size = (p / (p.max(1, keepdim=True).values + 1e-10)).sum((2, 3))
    return size / (size.sum(1, keepdim=True) + 1e-10)


def sfda_objective(
    logits: torch.Tensor, prior: torch.Tensor, nu_fg: float, lambda_ent: float = 1.0, lambda_kl: float = 1.0
) -> torch.Tensor:
    """``EntKLProp`` on foreground logits (B, 1 or 2, H, W): weighted entropy + KL(tau_hat ‖ prior)."""
    p1 = foreground_prob(logits)
    p = torch.stack([1 - p1, p1], dim=1)  # (B, 2, H, W)
    nu = torch.tensor([1 - nu_fg, nu_fg], dtype=p.dtype, device=p.device)
    ent = -(nu[None, :, None, None] * p * torch.log(p + 1e-10)).sum() / (p.sum() + 1e-10)
    est = class_ratio(p)
    log_prior = torch.log(prior.to(p) + 1e-10)[None]
    kl = (est * (torch.log(est + 1e-10) - log_prior)).sum() / len(p)
    return lambda_ent * ent + lambda_kl * kl


@register_method
class SFDAEntropyKL(Method):
    """Train on the source domain, then adapt without source data: weighted entropy + KL to a class-ratio prior."""

    info = MethodInfo(
        name="sfda-entropy-kl",
        family="domain-adaptation",
        tasks=SEG,
        params={
            "adapt_epochs": Param(10, "epochs over the unlabelled target images", low=0, high=1000),
            "adapt_lr": Param(1e-4, "learning rate of the adaptation phase", low=0.0, low_open=True),
            "lambda_ent": Param(1.0, "weight of the weighted entropy", low=0.0),
            "lambda_kl": Param(1.0, "weight of the class-ratio KL", low=0.0),
            "nu_fg": Param(0.9, "entropy weight of the foreground class (background: 1 - nu_fg)", low=0.0, high=1.0),
        },
        citation="Bateson et al., Source-Free Domain Adaptation for Image Segmentation, Medical Image Analysis 2022 "
                 "(arXiv 2108.03152)",
        summary="Source training with the base loss; adaptation on unlabelled target images by entropy + KL prior.",
        base_loss="dice",
        version="2",  # 2: KL(tau_hat ‖ tau) with norm_soft_size, as EntKLProp (was KL(tau ‖ tau_hat) + H(tau))
    )

    def setup(self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState,
              context: MethodContext | None = None) -> None:
        self.target = prepared.info.get("target_unlabeled")
        if self.target is None or len(self.target) == 0:
            raise UserError("Method 'sfda-entropy-kl' needs a target domain.",
                            "Use a dataset with shift=1, for example seg:vessels#shift=1.")
        counts = torch.as_tensor(prepared.class_counts, dtype=torch.float32)
        self.prior = counts / counts.sum()  # source foreground fraction: no target label is used
        self.seed = context.seed if context is not None else 0
        self.batch_size = context.training.batch_size if context is not None else 8
        self.task = context.task if context is not None else None
        self.recorded: dict[str, float] = {}

    def objective(self, logits: torch.Tensor) -> torch.Tensor:
        return sfda_objective(logits, self.prior, self.nu_fg, self.lambda_ent, self.lambda_kl)

    def finish(self, model: nn.Module, prepared: Any) -> nn.Module:
        if self.task is not None:
            self.recorded["source_only_dice"] = self.task.evaluate(model, prepared, "test", ("dice",))["dice"]
        target = self.target.to(next(model.parameters()).device)
        opt = torch.optim.Adam(model.parameters(), lr=float(self.adapt_lr))
        g = streams.generator(self.seed, "method_setup", "adaptation order")
        model.train()
        for _ in range(int(self.adapt_epochs)):
            order = torch.randperm(len(target), generator=g)
            for i in range(0, len(order), self.batch_size):
                idx = order[i: i + self.batch_size]
                opt.zero_grad(set_to_none=True)
                value = self.objective(model(target[idx.to(target.device)]))
                value.backward()
                opt.step()
        model.eval()
        return model

    def record(self) -> dict[str, float]:
        return dict(self.recorded)
