"""Label-Agnostic Forgetting (LAF): unlearning at the representation level, without labels.

Shen, Zhang, Zhao, Bialkowski, Chen & Xu, "Label-Agnostic Forgetting: A Supervision-Free Unlearning in Deep Models",
ICLR 2024 (arXiv 2404.00506); reference code ``ShaofeiShen768/LAF`` (``VUnlearning.py``, ``Train.vae_train``,
``Model.py``, ``hyperparameter.md``), read before writing this module.

Two stages, on the representation ``e = g(x)`` the head reads (the model's penultimate features):

1. Two small VAEs are fitted to the original model's representations: one of the remaining (retain) rows, one of
   the forget rows (loss ``Σ‖ê − e‖²/B + 0.025·KL(q(z|e) ‖ N(0, I))``, Adam 1e-3, 10 epochs, as the reference).
2. Each step alternates two updates of the extractor g, with two Adam optimisers:

   * extractor unlearning, ``L_UE = Σ_{retain} exp(r_s/(r_s + 1)) − Σ_{forget} exp(r_u/(r_u + 1))`` with ``r`` a
     row's squared reconstruction error by the frozen retain (``r_s``) or forget (``r_u``) VAE: retain
     representations stay where the retain VAE models them, forget representations leave the forget VAE's model;
   * representation alignment, ``L_RA = Σ_{retain} log(exp(c_s) / Σ_{forget} exp(c_u/τ))`` with
     ``c = 1 − cos(g(x), g_0(x))`` against the original extractor g_0: retain representations stay aligned with the
     original model, forget ones move away.

No label is read at any point; the head is left as it is (the paper's optional supervised repair of the classifier,
LAF+R, is not offered).

Scaled down: the reference VAEs are 256→128→32→8 for 256-d CNN features; here ``d → d/2 → d/4 → latent``
(at least 2·latent and latent wide) for the 64- to 128-d features of lossbench's small MLPs and CNNs, with a linear
decoder output (the reference's sigmoid assumes features in (0, 1); these are unbounded ReLU outputs). The retain
VAE is fitted on the retain rows, as the paper describes; the reference notebook fits it on the whole training split.
Sums rather than means over the batch are kept from the reference (Adam makes the scale immaterial).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.losses.base import Param
from lossbench.models.cnn import require_features
from lossbench.unlearning.objectives import Objective, ObjectiveInfo, Rows, UnlearningData

CITATION = (
    "Shen, Zhang, Zhao, Bialkowski, Chen & Xu, Label-Agnostic Forgetting: A Supervision-Free Unlearning in Deep "
    "Models, ICLR 2024 (arXiv 2404.00506); code ShaofeiShen768/LAF"
)


class RepresentationVAE(nn.Module):
    """A small Gaussian VAE over d-dimensional representations, initialised from ``generator`` (torch's default
    uniform ±1/√fan_in), so building it neither depends on nor moves the global random state."""

    def __init__(self, dim: int, latent: int, generator: torch.Generator) -> None:
        super().__init__()
        h1, h2 = max(dim // 2, 2 * latent), max(dim // 4, latent)
        with torch.random.fork_rng(devices=[]):
            self.encoder = nn.Sequential(nn.Linear(dim, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU())
            self.mu = nn.Linear(h2, latent)
            self.log_var = nn.Linear(h2, latent)
            self.decoder = nn.Sequential(nn.Linear(latent, h2), nn.ReLU(), nn.Linear(h2, h1), nn.ReLU(),
                                         nn.Linear(h1, dim))
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / layer.in_features**0.5
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, e: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, μ, σ) with one reparameterised sample ``z = μ + σ·ε``."""
        h = self.encoder(e)
        mu, sigma = self.mu(h), torch.exp(0.5 * self.log_var(h))
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device="cpu").to(mu.device)
        return self.decoder(mu + sigma * noise), mu, sigma


def vae_loss(recon: torch.Tensor, e: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
             kl_weight: float = 0.025) -> torch.Tensor:
    """``Σ‖ê − e‖²/B + kl_weight·KL(N(μ, σ²) ‖ N(0, I))/B`` (the reference's ``vae_loss_function``)."""
    b = e.shape[0]
    kld = -0.5 * torch.sum(torch.log(sigma.pow(2) + 1e-8) + 1 - mu.pow(2) - sigma.pow(2))
    return (F.mse_loss(recon, e, reduction="sum") + kl_weight * kld) / b


def fit_vae(vae: RepresentationVAE, e: torch.Tensor, generator: torch.Generator, epochs: int = 10,
            batch_size: int = 64, lr: float = 1e-3) -> RepresentationVAE:
    """Fit ``vae`` to the representations ``e`` (rows), then freeze it."""
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    vae.train()
    for _ in range(epochs):
        order = torch.randperm(len(e), generator=generator).to(e.device)
        for start in range(0, len(e), batch_size):
            batch = e[order[start : start + batch_size]]
            opt.zero_grad(set_to_none=True)
            recon, mu, sigma = vae(batch, generator)
            vae_loss(recon, batch, mu, sigma).backward()
            opt.step()
    vae.eval()
    vae.requires_grad_(False)
    return vae


def reconstruction_error(vae: RepresentationVAE, e: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per-row ``‖ê − e‖²`` (gradients flow to ``e``, not to the frozen VAE)."""
    recon = vae(e, generator)[0]
    return (recon - e).pow(2).sum(dim=1)


def extractor_unlearning_loss(r_retain: torch.Tensor, r_forget: torch.Tensor) -> torch.Tensor:
    """``L_UE = Σ exp(r_s/(r_s + 1)) − Σ exp(r_u/(r_u + 1))`` (each term lies in [1, e))."""
    return torch.exp(r_retain / (r_retain + 1)).sum() - torch.exp(r_forget / (r_forget + 1)).sum()


def alignment_loss(e_retain: torch.Tensor, e_retain_0: torch.Tensor, e_forget: torch.Tensor,
                   e_forget_0: torch.Tensor, temperature: float) -> torch.Tensor:
    """``L_RA = Σ_s [c_s − log Σ_u exp(c_u/τ)]`` with ``c = 1 − cos(e, e_0)``.

    The reference's ``extractor_loss_functioncosine``: τ divides the forget terms only.
    """
    c_s = 1 - F.cosine_similarity(e_retain, e_retain_0, dim=1)
    c_u = 1 - F.cosine_similarity(e_forget, e_forget_0, dim=1)
    return c_s.sum() - len(c_s) * torch.logsumexp(c_u / temperature, dim=0)


class LabelAgnosticForgetting(Objective):
    info = ObjectiveInfo(
        name="laf",
        summary="Label-free: VAEs of the retain and forget representations steer the extractor; a contrastive "
                "term keeps retain representations aligned with the original model.",
        formula="per step: one Adam step on L_UE = Σ_r exp(r_s/(r_s+1)) − Σ_f exp(r_u/(r_u+1)), then one on "
                "L_RA = Σ_r log(exp(1 − cos(g, g_0)) / Σ_f exp((1 − cos(g, g_0))/τ))",
        params={
            "lr_ue": Param(5e-4, "Adam learning rate of the extractor-unlearning step (10× the reference's 5e-5 "
                                 "on MNIST: the step budget is about 10× smaller)", low=0.0, low_open=True),
            "lr_ra": Param(1e-3, "Adam learning rate of the alignment step (10× the reference's 1e-4)", low=0.0,
                           low_open=True),
            "temperature": Param(5.0, "τ of the alignment term (reference: 5 for random forgetting, 20 for a class)",
                                 low=0.0, low_open=True),
            "latent": Param(8, "VAE latent dimension (reference: 8 on MNIST)", low=1),
            "vae_epochs": Param(10, "epochs of each VAE fit (reference: 10)", low=1),
        },
        citation=CITATION,
        uses=frozenset({"retain", "reference"}),
        notes="Needs a model with a feature extractor and a linear head (mlp, cnn). Fitting the two VAEs is part of "
              "the method's wall time. Each step makes two optimiser steps (UE then RA), with the optimisers the "
              "method owns; the loop's optimiser is not used.",
    )

    def setup(self, model: nn.Module, data: UnlearningData) -> None:
        super().setup(model, data)
        p = self.params
        self.extractor, _ = require_features(model, "laf", "mlp, cnn")
        reference_extractor, _ = require_features(data.reference, "laf", "mlp, cnn")
        with torch.no_grad():
            self.e0 = {"forget": reference_extractor(data.forget.x).detach(),
                       "retain": reference_extractor(data.retain.x).detach()}
        dim = self.e0["retain"].shape[1]
        g = data.generator
        device = self.e0["retain"].device
        self.vae_retain = fit_vae(RepresentationVAE(dim, p["latent"], g).to(device), self.e0["retain"], g,
                                  p["vae_epochs"])
        self.vae_forget = fit_vae(RepresentationVAE(dim, p["latent"], g).to(device), self.e0["forget"], g,
                                  p["vae_epochs"])
        params = [q for q in self.extractor.parameters() if q.requires_grad]
        self.opt_ue = torch.optim.Adam(params, lr=p["lr_ue"])
        self.opt_ra = torch.optim.Adam(params, lr=p["lr_ra"])

    def update(self, model: nn.Module, forget: Rows, retain: Rows, optimizer: torch.optim.Optimizer,
               step: int) -> float:
        assert self.data is not None
        g = self.data.generator
        self.opt_ue.zero_grad(set_to_none=True)
        ue = extractor_unlearning_loss(reconstruction_error(self.vae_retain, self.extractor(retain.x), g),
                                       reconstruction_error(self.vae_forget, self.extractor(forget.x), g))
        ue.backward()
        self.opt_ue.step()

        self.opt_ra.zero_grad(set_to_none=True)
        ra = alignment_loss(self.extractor(retain.x), self.e0["retain"][retain.index], self.extractor(forget.x),
                            self.e0["forget"][forget.index], self.params["temperature"])
        ra.backward()
        self.opt_ra.step()
        return float(ue.detach() + ra.detach())

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        raise NotImplementedError("laf makes two optimiser steps per update()")
