"""Training methods for metric learning: Metrix (mixup for deep metric learning) and G-SimCLR."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lossbench import streams
from lossbench.errors import UserError
from lossbench.losses._embedding import pair_masks
from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodContext, MethodInfo, StepState, register_method
from lossbench.methods.common import beta

EMB = frozenset({"embedding"})


def random_partner(mask: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of a uniformly drawn True column per row, rows that have one)."""
    r = torch.rand(mask.shape, generator=generator).to(mask.device)
    return r.masked_fill(~mask, -1.0).argmax(1), mask.any(1)


@register_method
class Metrix(Method):
    """Metrix: mixup for deep metric learning (Venkataramanan et al., ICLR 2022, arXiv 2106.04990).

    For each anchor k of the batch, a positive p_k and a negative n_k are drawn; their inputs (``mode="input"``),
    penultimate features (``"feature"``, the paper's best; the model's last layer is applied after mixing) or
    embeddings (``"embed"``) are mixed with one λ ~ Beta(α, α) per batch. Every anchor j then sees the mixed point
    as λ of a positive if y_j = y_{p_k} (else of a negative) plus (1 − λ) of a positive if y_j = y_{n_k} — the
    interpolated target ℓ̃ = λ·ℓ⁺ + (1 − λ)·ℓ⁻ of the paper, generalised from the sample's own anchor to every
    anchor of the batch (Proxy Anchor: every proxy). Loss = L_clean + w·L_mix, w = 0.4.
    Checked against ``billpsomas/Metrix_ICLR22`` (``mixup/utils.py`` ``mixup_data``, ``mixup/losses.py``
    ``loss_posneg_mixup``); that repository holds only the contrastive variant, so the multi-similarity and
    proxy-anchor weightings follow the paper's description.
    """

    info = MethodInfo(
        name="metrix",
        family="metric-learning",
        tasks=EMB,
        params={
            "weight": Param(0.4, "weight w of the mixed loss", low=0.0),
            "alpha": Param(2.0, "Beta(α, α) for λ", low=0.0, low_open=True),
            "mode": Param("feature", "what is mixed", choices=("input", "feature", "embed")),
        },
        citation="Venkataramanan, Psomas, Kijak, Amsaleg, Karantzalos, Avrithis, It Takes Two to Tango: Mixup for "
        "Deep Metric Learning, ICLR 2022",
        summary="Mix positives with negatives and train on interpolated pair targets",
        base_loss="contrastive",
    )

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        if not hasattr(loss, "metrix_term"):
            raise UserError(f"metrix wraps contrastive, multi-similarity or proxy-anchor, not {loss.info.name!r}.",
                            "Write metrix:base=contrastive (or multi-similarity, proxy-anchor).")
        x, y = batch.x, batch.y
        feature = self.mode == "feature" and isinstance(model, nn.Sequential) and len(model) > 1
        # the penultimate features: every layer but the last (slicing would rebuild the Sequential subclass)
        feats = nn.Sequential(*list(model)[:-1])(x) if feature else None
        emb = model[-1](feats) if feature else model(x)
        clean = loss(emb, y)
        positives, negatives = pair_masks(y)
        p, has_p = random_partner(positives, state.generator)
        n, has_n = random_partner(negatives, state.generator)
        keep = has_p & has_n
        if not bool(keep.any()):
            return clean
        p, n = p[keep], n[keep]
        lam = beta(self.alpha, state.generator)
        if feature:
            mixed = model[-1](lam * feats[p] + (1 - lam) * feats[n])
        elif self.mode == "input":
            mixed = model(lam * x[p] + (1 - lam) * x[n])
        else:
            mixed = lam * emb[p] + (1 - lam) * emb[n]
        anchor_labels = torch.arange(loss.proxies.raw.shape[0], device=y.device) if hasattr(loss, "proxies") else y
        is_a = (anchor_labels[:, None] == y[p][None, :]).to(emb.dtype)
        is_b = (anchor_labels[:, None] == y[n][None, :]).to(emb.dtype)
        w_pos = lam * is_a + (1 - lam) * is_b
        w_neg = lam * (1 - is_a) + (1 - lam) * (1 - is_b)
        return clean + self.weight * loss.metrix_term(emb, y, mixed, w_pos, w_neg)


class DenoisingAutoencoder(nn.Module):
    def __init__(self, n_in: int, code: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, code))
        self.decoder = nn.Sequential(nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


@register_method
class GSimCLR(Method):
    """G-SimCLR: SimCLR's NT-Xent with pseudo-label-guided batches (Chakraborty et al., arXiv 2009.12007).

    Setup trains a denoising autoencoder on the training inputs (labels unused) and clusters its codes with
    k-means into ``clusters`` pseudo-labels. Each step keeps one row per pseudo-label of the loop's batch (so no two
    rows of a batch are likely to share a class: fewer false negatives), makes two augmented views per row
    (Gaussian noise and feature dropout: tabular stand-ins for image augmentations) and applies the base loss with
    the row index as label, which makes ``nt-xent`` SimCLR's NT-Xent. Class labels are never used: this is
    self-supervised. ``guided=false`` is plain SimCLR (no pseudo-label filtering) for comparison.
    Reference: ``ariG23498/G-SimCLR`` (TensorFlow notebooks; README read).
    """

    info = MethodInfo(
        name="g-simclr",
        family="metric-learning",
        tasks=EMB,
        params={
            "clusters": Param(128, "k-means pseudo-labels", low=2),
            "guided": Param(True, "one row per pseudo-label in each batch"),
            "noise": Param(0.2, "std of Gaussian view noise (standardised features)", low=0.0),
            "drop": Param(0.2, "feature dropout probability of a view", low=0.0, high=1.0, high_open=True),
            "ae_epochs": Param(20, "denoising autoencoder epochs", low=1),
        },
        citation="Chakraborty, Gosthipaty, Paul, G-SimCLR: Self-Supervised Contrastive Learning with Guided "
        "Projection via Pseudo Labelling, ICDM Workshops 2020",
        summary="SimCLR with k-means pseudo-labels on autoencoder codes guiding batch composition",
        base_loss="nt-xent",
    )

    def setup(self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState,
              context: MethodContext | None = None) -> None:
        seed = context.seed if context is not None else 0
        x = prepared.train.X.detach().float().cpu()
        self.pseudo = torch.zeros(len(x), dtype=torch.long)
        if not self.guided:
            return
        from sklearn.cluster import KMeans

        g = streams.generator(seed, "method_setup", "autoencoder data")
        with torch.random.fork_rng():
            streams.seed_torch(seed, "method_setup", "autoencoder init")
            ae = DenoisingAutoencoder(x.shape[1])
        opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
        for _ in range(self.ae_epochs):
            for idx in torch.randperm(len(x), generator=g).split(128):
                xb = x[idx]
                opt.zero_grad()
                ((ae(xb + self.noise * torch.randn(xb.shape, generator=g)) - xb) ** 2).mean().backward()
                opt.step()
        with torch.no_grad():
            codes = ae.encoder(x).numpy().astype(np.float64)
        k = min(self.clusters, len(x))
        labels = KMeans(n_clusters=k, n_init=3,
                        random_state=streams.seed_of(seed, "method_setup", "clusters", bits=32)).fit_predict(codes)
        self.pseudo = torch.as_tensor(labels, dtype=torch.long)

    def view(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=generator).to(x.device)
        keep = (torch.rand(x.shape, generator=generator) >= self.drop).to(x.device)
        return (x + self.noise * noise) * keep

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        x = batch.x
        if self.guided:
            pseudo = self.pseudo[batch.index.cpu()].numpy()
            _, first = np.unique(pseudo, return_index=True)
            x = x[torch.as_tensor(np.sort(first), device=x.device)]
        m = len(x)
        emb = model(torch.cat([self.view(x, state.generator), self.view(x, state.generator)]))
        labels = torch.arange(m, device=x.device).repeat(2)
        return loss(emb, labels)
