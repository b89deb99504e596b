"""NoProp-DT: T blocks, each trained on its own to denoise a noisy label embedding; no back-propagation between them.

Source: Li, Teh & Pascanu, "NoProp: Training Neural Networks without Back-propagation or Forward-propagation",
2025, arXiv 2503.24322 (§2 discrete-time variant, Eq. 8 and Algorithm 1).

* Labels are embedded by W_embed; here W_embed = I (one-hot prototypes, embedding dimension K), one of the
  paper's options, so the KL term of Eq. 8 on the embedding is a constant and omitted.
* Noise schedule: ᾱ_t from a cosine schedule running from pure noise (t = 0, ᾱ_0 = 0) to the clean embedding
  (t = T), capped at ``alpha_max`` so the SNR of the last step stays finite. z_{t−1} ~ q(z_{t−1} | y) =
  N(√ᾱ_{t−1}·u_y, (1 − ᾱ_{t−1})·I).
* Block t takes the image x and z_{t−1}, outputs class logits; û_t = softmax(logits)·W_embed. Its loss is
  (η/2)·(SNR(t) − SNR(t−1))·‖û_t − u_y‖² (Eq. 8's per-step term times T, since every block is trained on every
  batch instead of sampling one t); a linear head on z_T ~ q(z_T | y) is trained with the suite's base loss
  (CE in the paper). Each block's input z_{t−1} is sampled from q, not produced by the previous block, so no
  gradient can flow between blocks: one backward of the summed loss equals T separate per-block updates.
* Inference: z_0 = 0 (the prior's mean), z_t = a_t·û_t + b_t·z_{t−1} with the Gaussian posterior
  q(z_t | z_{t−1}, u) coefficients a_t = √ᾱ_t(1 − α_t)/(1 − ᾱ_{t−1}), b_t = √α_t(1 − ᾱ_t)/(1 − ᾱ_{t−1}),
  α_t = ᾱ_{t−1}/ᾱ_t; the posterior noise √c_t·ε is left out so test metrics are deterministic. The head starts
  as the identity (argmax of z_T, the nearest one-hot prototype); a default-initialised head needs hundreds of
  steps before the chain's predictions mean anything, which starves early stopping on small data.

Each block's image encoder is a freshly initialised copy of the suite model's feature extractor (the CNN's conv
stack, or the MLP's hidden layers), drawn from the trial's generator, so pairing across seeds holds.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodInfo, StepState, register_method
from lossbench.methods.common import BOTH
from lossbench.methods.heads import attach_forward
from lossbench.models.cnn import require_features

CITATION = ("Li, Teh, Pascanu, NoProp: Training Neural Networks without Back-propagation or Forward-propagation, "
            "2025 (arXiv 2503.24322)")


def cosine_alpha_bar(T: int, alpha_max: float = 0.99) -> torch.Tensor:
    """ᾱ_0..ᾱ_T: ᾱ_t = cos²(π/2 · (1 − t/T)), 0 at t = 0 (pure noise), capped at ``alpha_max`` near t = T."""
    t = torch.arange(T + 1, dtype=torch.float64)
    ab = (torch.cos(math.pi / 2 * (1 - t / T)) ** 2).clamp(0.0, alpha_max)
    ab[0] = 0.0  # exactly pure noise (cos(π/2) is 6e-17 in floating point)
    return ab


def reinitialised(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """A deep copy of ``module`` with fresh parameters drawn from ``generator`` (the global RNG is untouched)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    clone = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in clone.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return clone


class DenoiseBlock(nn.Module):
    """û_t(x, z): image encoder ⊕ label-embedding MLP → class logits → softmax · W_embed."""

    def __init__(self, encoder: nn.Module, feature_dim: int, k: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.z_path = nn.Sequential(nn.Linear(k, feature_dim), nn.ReLU())
        self.out = nn.Sequential(nn.Linear(2 * feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, k))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.out(torch.cat([self.encoder(x), self.z_path(z)], dim=1))
        return torch.softmax(logits, dim=1)  # · W_embed with W_embed = I


class NoPropNet(nn.Module):
    def __init__(self, blocks: list[DenoiseBlock], k: int, alpha_bar: torch.Tensor) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(k, k)
        with torch.no_grad():
            # z_T approximates the one-hot prototype u_y: start from the nearest-prototype rule (argmax z) and let CE
            # sharpen it, so the chain's predictions are meaningful for early stopping from the first epoch
            self.head.weight.copy_(torch.eye(k))
            self.head.bias.zero_()
        self.k = k
        ab = alpha_bar
        alpha = torch.ones_like(ab)
        alpha[1:] = ab[:-1] / ab[1:]
        denom = (1 - ab[:-1]).clamp_min(1e-12)
        a = torch.zeros_like(ab)
        b = torch.zeros_like(ab)
        a[1:] = ab[1:].sqrt() * (1 - alpha[1:]) / denom
        b[1:] = alpha[1:].sqrt() * (1 - ab[1:]) / denom
        snr = ab / (1 - ab)
        self.register_buffer("alpha_bar", ab.float())
        self.register_buffer("a", a.float())
        self.register_buffer("b", b.float())
        self.register_buffer("snr_gain", (snr[1:] - snr[:-1]).float())  # SNR(t) − SNR(t−1), t = 1..T

    def noisy(self, u: torch.Tensor, t: int, generator: torch.Generator | None) -> torch.Tensor:
        """z_t ~ q(z_t | y) = N(√ᾱ_t·u, (1 − ᾱ_t)I); the draw comes from the trial's generator."""
        eps = torch.randn(u.shape, generator=generator).to(u.device)
        return self.alpha_bar[t].sqrt() * u + (1 - self.alpha_bar[t]).sqrt() * eps

    def block_loss(self, t: int, x: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None,
                   eta: float) -> torch.Tensor:
        """The loss of block t (1-based): it only touches block t's parameters."""
        z_prev = self.noisy(u, t - 1, generator)  # a sample, not block t−1's output
        u_hat = self.blocks[t - 1](x, z_prev)
        return 0.5 * eta * self.snr_gain[t - 1] * ((u_hat - u) ** 2).sum(dim=1).mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.zeros(len(x), self.k, device=x.device, dtype=x.dtype)
        for t, block in enumerate(self.blocks, start=1):
            z = self.a[t] * block(x, z) + self.b[t] * z
        return self.head(z)


@register_method
class NoPropDT(Method):
    """Discrete-time NoProp: independent denoising blocks and a linear head on the last noisy embedding."""

    info = MethodInfo(
        name="noprop-dt",
        family="noprop",
        tasks=BOTH,
        params={
            "T": Param(10, "number of denoising blocks (diffusion steps)", low=1, high=100),
            "eta": Param(0.1, "weight η of the denoising terms", low=0, low_open=True),
            "alpha_max": Param(0.99, "cap on ᾱ_T (keeps SNR(T) finite)", low=0, high=1, low_open=True,
                               high_open=True),
        },
        citation=CITATION,
        summary="NoProp-DT: blocks learn to denoise label embeddings independently; no back-propagation between them.",
    )

    def setup(self, model: nn.Module, prepared: object, loss: nn.Module, state: StepState, context: object = None
              ) -> None:
        extractor, head = require_features(model, "noprop-dt", "cnn or mlp")
        k = head.out_features
        g = state.generator if state.generator is not None else torch.Generator().manual_seed(0)
        blocks = [DenoiseBlock(reinitialised(extractor, g), head.in_features, k) for _ in range(self.T)]
        for block in blocks:  # the z path and output layers too come from the trial's generator
            for m in (*block.z_path, *block.out):
                if isinstance(m, nn.Linear):
                    bound = 1.0 / m.in_features**0.5
                    with torch.no_grad():
                        m.weight.uniform_(-bound, bound, generator=g)
                        m.bias.uniform_(-bound, bound, generator=g)
        device = next(model.parameters()).device
        self.net = NoPropNet(blocks, k, cosine_alpha_bar(self.T, self.alpha_max)).to(device)
        attach_forward(model, "noprop", self.net, self.net.forward)

    def objective(self, batch: Batch, loss: nn.Module, state: StepState) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(head loss, per-block losses) on one batch."""
        u = F.one_hot(batch.y, self.net.k).to(batch.x.dtype)
        blocks = [self.net.block_loss(t, batch.x, u, state.generator, self.eta) for t in range(1, self.T + 1)]
        z_T = self.net.noisy(u, self.T, state.generator)
        return loss(self.net.head(z_T), batch.y, **self.loss_kwargs(loss, batch, state)), blocks

    def update(self, model: nn.Module, batch: Batch, loss: nn.Module, optimizer: torch.optim.Optimizer,
               state: StepState) -> float:
        optimizer.zero_grad(set_to_none=True)
        head_loss, block_losses = self.objective(batch, loss, state)
        total = head_loss + torch.stack(block_losses).sum()
        # blocks share no tensor that requires grad, so this one backward is T independent local updates
        total.backward()
        optimizer.step()
        return float(total.detach())
