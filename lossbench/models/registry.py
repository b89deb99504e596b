"""The model-family registry: suite files name a family and its keyword options."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lossbench.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model", entry_point_group="lossbench.models")
