"""Small helpers shared by the method families: seeded draws, per-sample losses, the MLP head split."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lossbench.errors import UserError

BOTH = frozenset({"binary", "multiclass"})


def beta(a: float, generator: torch.Generator | None) -> float:
    """One draw from Beta(a, a), seeded from the trial's generator (torch's Beta takes no generator)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(a, a))


def per_sample_loss(loss: nn.Module, logits: torch.Tensor, y: torch.Tensor, **extras: Any) -> torch.Tensor:
    """The base loss per sample (shape ``(batch,)``), whatever its ``reduction``."""
    info = getattr(loss, "info", None)
    if info is None or not hasattr(loss, "per_sample") or info.batch_level:
        raise UserError(
            f"This method re-weights samples and needs a per-sample base loss; {getattr(info, 'name', loss)!r} is not.",
            "Use base=ce or another per-sample loss.",
        )
    loss.check_inputs(logits, y)
    return loss.per_sample(logits, y, **extras)


def split_head(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(feature extractor, linear head) of an ``nn.Sequential`` whose last layer is the head (the MLP)."""
    if not isinstance(model, nn.Sequential) or not isinstance(model[-1], nn.Linear):
        raise UserError(
            f"This method needs a model whose last layer is a linear head (the mlp family); got {type(model).__name__}."
        )
    # a plain Sequential view sharing the layers (slicing an MLP would call MLP's constructor)
    return nn.Sequential(*list(model)[:-1]), model[-1]


def seeded_linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """A linear layer initialised like torch's default, but from the trial's generator (not global RNG state)."""
    layer = nn.Linear(n_in, n_out)
    bound = 1.0 / max(n_in, 1) ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer
