"""The attack AdvUnlearn trains against, and the robustness check of every method: L∞ PGD toward the true label.

An unlearned model should not predict a forgotten row's label. The attacker looks, within ``‖δ‖∞ ≤ ε`` of each
forget input, for the point where the model predicts the label again: projected gradient descent on
``CE(f(x + δ), y)`` from a uniform random start, step ``2.5·ε/steps`` (Madry et al., ICLR 2018). Inputs are the
task's standardised features, so ε is in units of a feature's standard deviation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pgd_toward_label(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Perturbed inputs ``x + δ`` (detached) that lower the cross-entropy of ``y``; the model's weights get no grad."""
    if epsilon <= 0 or steps < 1:
        return x.detach()
    step = 2.5 * epsilon / steps
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    delta = ((2 * noise - 1) * epsilon).requires_grad_(True)
    for _ in range(steps):
        loss = F.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= step * grad.sign()
            delta.clamp_(-epsilon, epsilon)
    return (x + delta).detach()
