"""Small U-Nets for 2-D segmentation, sized to train on a CPU at 64×64 in minutes.

``unet``: encoder/decoder with skip connections (Ronneberger et al. 2015), ``channels`` per level.
``prob-unet``: the same U-Net plus a Gaussian latent (a prior net on the image, a posterior net
on image + mask) broadcast into the last features, after the Probabilistic U-Net (Kohl et al.
2018) that PULASki trains; ``forward`` decodes the prior mean, so evaluation is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from lossbench.models.registry import MODELS


def _block(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=not norm)]
        if norm:
            layers.append(nn.GroupNorm(min(4, c_out), c_out))  # batch-size independent (batches of 2-8 images)
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net with ``len(channels)`` levels; ``n_out`` logit maps (1 for binary segmentation)."""

    def __init__(self, n_in: int = 1, n_out: int = 1, channels: Sequence[int] = (8, 16, 32), norm: bool = True) -> None:
        super().__init__()
        chans = list(channels)
        if not chans:
            raise ValueError("a U-Net needs at least one level in channels")
        self.down = nn.ModuleList()
        c = n_in
        for ch in chans:
            self.down.append(_block(c, ch, norm))
            c = ch
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for ch in reversed(chans[:-1]):
            self.up.append(nn.ConvTranspose2d(c, ch, 2, stride=2))
            self.dec.append(_block(2 * ch, ch, norm))
            c = ch
        self.width = c
        self.head = nn.Conv2d(c, n_out, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1]), strict=False):
            x = dec(torch.cat([up(x), skip], dim=1))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Encoder(nn.Module):
    """Image (and optionally mask) → mean and log-variance of a diagonal Gaussian."""

    def __init__(self, n_in: int, width: int, latent: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(n_in, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.out = nn.Linear(2 * width, 2 * latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.out(self.net(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8, 8)


class ProbUNet(nn.Module):
    """U-Net features + latent z ~ N(mu, sigma) broadcast over the image, decoded by 1×1 convolutions."""

    def __init__(self, n_in: int = 1, n_out: int = 1, channels: Sequence[int] = (8, 16, 32), norm: bool = True,
                 latent: int = 6) -> None:
        super().__init__()
        self.unet = UNet(n_in, n_out, channels, norm)
        w = self.unet.width
        self.latent = latent
        self.prior = _Encoder(n_in, w, latent)
        self.posterior = _Encoder(n_in + 1, w, latent)
        self.comb = nn.Sequential(nn.Conv2d(w + latent, w, 1), nn.ReLU(), nn.Conv2d(w, n_out, 1))

    def decode(self, feats: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        zmap = z[:, :, None, None].expand(-1, -1, *feats.shape[2:])
        return self.comb(torch.cat([feats, zmap], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.prior(x)
        return self.decode(self.unet.features(x), mu)

    def sample(
        self, x: torch.Tensor, n: int, mask: torch.Tensor | None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` logit samples (B, n, H, W) from the posterior (given a mask) or the prior, and KL(q ‖ p) per image."""
        feats = self.unet.features(x)
        mu_p, lv_p = self.prior(x)
        if mask is not None:
            mu_q, lv_q = self.posterior(torch.cat([x, mask[:, None].to(x.dtype)], dim=1))
        else:
            mu_q, lv_q = mu_p, lv_p
        # KL between diagonal Gaussians, summed over latent dimensions
        kl = 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p) ** 2) / lv_p.exp() - 1).sum(1)
        outs = []
        for _ in range(n):
            eps = torch.randn(mu_q.shape, generator=generator, device=x.device, dtype=x.dtype)
            outs.append(self.decode(feats, mu_q + eps * (0.5 * lv_q).exp())[:, 0])
        return torch.stack(outs, dim=1), kl


def _unet(n_features: int, n_classes: int, channels: Sequence[int] = (8, 16, 32), norm: bool = True) -> UNet:
    # binary segmentation keeps one logit map; K > 2 classes get K maps (softmax)
    return UNet(1, 1 if n_classes <= 2 else n_classes, channels, norm)


def _prob_unet(n_features: int, n_classes: int, channels: Sequence[int] = (8, 16, 32), norm: bool = True,
               latent: int = 6) -> ProbUNet:
    return ProbUNet(1, 1 if n_classes <= 2 else n_classes, channels, norm, latent)


MODELS.register("unet", _unet, params={"channels": [8, 16, 32], "norm": True})
MODELS.register("prob-unet", _prob_unet, params={"channels": [8, 16, 32], "norm": True, "latent": 6})
