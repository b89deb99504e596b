"""STORM, minimal version: on-the-fly meta loss rescaling without clean data.

Source: Heck et al., "Learning from Noisy Labels via Self-Taught On-the-Fly Meta Loss Rescaling", AAAI 2025,
arXiv 2412.12955. The authors' code (gitlab.cs.uni-duesseldorf.de, storm-public) was not read; this follows the
lossbench catalogue §3.6 "minimal version", which is a proposal and not the paper's recipe.

What this does, per step after ``warmup`` epochs of plain training:

1. features per row, without gradient: base loss, max probability, entropy, and mean and variance of the CE loss
   over ``passes`` forward passes under input dropout (rate 0.1, masks from the trial's generator);
2. a rescaler Ω (Linear → ReLU → Linear → sigmoid) maps the features to weights, normalised to mean 1 in the batch;
3. one virtual SGD step θ' = θ − ``inner_lr``·∇θ mean(w·ℓ) (with ``torch.func.functional_call``; BatchNorm buffers
   are copied so the look-ahead leaves them alone);
4. a meta batch of the same size is drawn from the *training* data, without replacement, with probability ∝ the
   latest weight seen for each row (1 until a row has been weighted); its loss under θ', weighted by Ω's normalised
   weights, is back-propagated through the look-ahead into Ω, which Adam (``meta_lr``) updates;
5. the model takes its real step on mean(w·ℓ) with the updated, detached weights.

Differences from the paper (honest list): the feature set and the G = 2 noisy passes are a guess (the paper's exact
feature list was not checked); input dropout replaces model dropout, since the MLP may have none; the meta batch is
sampled from cached weights rather than recomputed over the whole training set; only the gradient through the
look-ahead is used (the paper's additional outer term is not); no per-epoch rescaler reset or other schedule.
The look-ahead costs roughly 3× a plain step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodContext, MethodInfo, StepState, register_method
from lossbench.methods.common import BOTH, per_sample_loss

CITATION = "Heck et al., Learning from Noisy Labels via Self-Taught On-the-Fly Meta Loss Rescaling, AAAI 2025"
N_FEATURES = 5


class Rescaler(nn.Module):
    """Per-row features → weight in (0, 1)."""

    def __init__(self, hidden: int, generator: torch.Generator) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        with torch.no_grad():
            for layer in (self.net[0], self.net[2]):
                bound = 1.0 / layer.in_features**0.5
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(feat))[:, 0]


def normalised(w: torch.Tensor) -> torch.Tensor:
    return w / w.mean().clamp_min(1e-12)


@register_method
class Storm(Method):
    """Meta-learned per-sample loss weights from a noisy meta batch drawn from the training data."""

    info = MethodInfo(
        name="storm",
        family="meta",
        tasks=BOTH,
        params={
            "warmup": Param(2, "epochs of plain training before rescaling starts", low=0, high=10_000),
            "inner_lr": Param(0.1, "learning rate of the virtual SGD look-ahead", low=0.0, low_open=True),
            "meta_lr": Param(0.001, "Adam learning rate of the rescaler", low=0.0, low_open=True),
            "hidden": Param(16, "rescaler hidden width", low=1, high=4096),
            "passes": Param(2, "input-dropout passes for the loss mean/variance features (G)", low=1, high=16),
        },
        citation=CITATION,
        summary="Minimal STORM: an MLP rescales per-sample losses, meta-trained through a one-step look-ahead.",
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.rescaler: Rescaler | None = None
        self.meta_opt: torch.optim.Optimizer | None = None
        self.cache: torch.Tensor | None = None  # latest weight seen per training row
        self.X: torch.Tensor | None = None
        self.y: torch.Tensor | None = None

    def setup(
        self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState, context: MethodContext | None = None
    ) -> None:
        g = state.generator or torch.Generator()
        self.rescaler = Rescaler(int(self.params["hidden"]), g).to(prepared.train.X.device)
        self.meta_opt = torch.optim.Adam(self.rescaler.parameters(), lr=float(self.params["meta_lr"]))
        self.X, self.y = prepared.train.X, prepared.train.y
        self.cache = torch.ones(len(self.y))

    @torch.no_grad()
    def features(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: nn.Module,
                 generator: torch.Generator | None) -> torch.Tensor:
        logits = model(x)
        base = per_sample_loss(loss, logits, y)
        prob = F.softmax(logits, dim=1)
        entropy = -(prob * prob.clamp_min(1e-12).log()).sum(dim=1)
        noisy = []
        for _ in range(int(self.params["passes"])):
            keep = (torch.rand(x.shape, generator=generator) >= 0.1).to(x.device, x.dtype)
            noisy.append(F.cross_entropy(model(x * keep / 0.9), y, reduction="none"))
        stack = torch.stack(noisy)
        var = stack.var(0, unbiased=False)
        return torch.stack([base, prob.max(dim=1).values, entropy, stack.mean(0), var], dim=1)

    def update(
        self, model: nn.Module, batch: Batch, loss: nn.Module, optimizer: torch.optim.Optimizer, state: StepState
    ) -> float:
        if state.epoch < int(self.params["warmup"]):
            return super().update(model, batch, loss, optimizer, state)
        assert self.rescaler is not None and self.meta_opt is not None and self.cache is not None
        assert self.X is not None and self.y is not None
        g = state.generator
        extras = self.loss_kwargs(loss, batch, state)
        feat = self.features(model, batch.x, batch.y, loss, g)

        # Meta step: look ahead one SGD step under Ω's weights, score the look-ahead on a weighted meta batch.
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        buffers = {n: b.clone() for n, b in model.named_buffers()}
        w = normalised(self.rescaler(feat))
        inner = (w * per_sample_loss(loss, functional_call(model, {**params, **buffers}, (batch.x,)), batch.y,
                                     **extras)).mean()
        grads = torch.autograd.grad(inner, list(params.values()), create_graph=True, allow_unused=True)
        lr = float(self.params["inner_lr"])
        ahead = {n: p - lr * gr if gr is not None else p for (n, p), gr in zip(params.items(), grads, strict=True)}
        meta_idx = torch.multinomial(self.cache, min(len(batch.y), len(self.cache)), replacement=False, generator=g)
        xm, ym = self.X[meta_idx.to(self.X.device)], self.y[meta_idx.to(self.y.device)]
        meta_feat = self.features(model, xm, ym, loss, g)
        meta_extras = {**extras, "sample_index": meta_idx} if "sample_index" in extras else extras
        lm = per_sample_loss(loss, functional_call(model, {**ahead, **buffers}, (xm,)), ym, **meta_extras)
        meta = (normalised(self.rescaler(meta_feat)) * lm).mean()
        self.meta_opt.zero_grad(set_to_none=True)
        meta.backward(inputs=list(self.rescaler.parameters()))
        self.meta_opt.step()

        # Real step with the updated rescaler's weights, held fixed.
        with torch.no_grad():
            w = normalised(self.rescaler(feat))
        self.cache[batch.index.cpu()] = w.cpu().clamp_min(1e-6)
        optimizer.zero_grad(set_to_none=True)
        value = (w * per_sample_loss(loss, model(batch.x), batch.y, **extras)).mean()
        value.backward()
        optimizer.step()
        return float(value.detach())

    def record(self) -> dict[str, float]:
        if self.cache is None:
            return {}
        return {"storm_weight_min": float(self.cache.min()), "storm_weight_std": float(self.cache.std())}


__all__ = ["Rescaler", "Storm"]
