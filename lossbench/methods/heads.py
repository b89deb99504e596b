"""Letting a method supply the model's prediction path (NoProp's block chain, Hyp-OC's hyperbolic classifier).

The training loop evaluates, early-stops on and restores the model it was given. A method whose predictions
come from modules it creates attaches them to that model (so ``state_dict`` and best-epoch restoring cover
them) and routes the model's forward through them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def attach_forward(model: nn.Module, name: str, module: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor]
                   ) -> None:
    """Register ``module`` as ``model.<name>`` and make ``model(x)`` call ``forward(x)``."""
    model.add_module(name, module)
    model.forward = forward  # type: ignore[method-assign]  # instance attribute: nn.Module.__call__ uses it


def has_attached_forward(model: nn.Module) -> bool:
    """True when a method rerouted the model's forward (its own head is then not the prediction path)."""
    return "forward" in vars(model)
