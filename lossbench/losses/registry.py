"""The loss registry and the one way to build a loss from a spec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossbench.losses.base import CONTEXT_NEEDS, LossBase
from lossbench.registry import Registry

LOSSES: Registry[type[LossBase]] = Registry("loss", entry_point_group="lossbench.losses", plural="losses")


def register_loss(cls: type[LossBase]) -> type[LossBase]:
    """Class decorator: register ``cls`` under ``cls.info.name``."""
    LOSSES.register(cls.info.name, cls, family=cls.info.family)
    return cls


def make_loss(name: str, params: Mapping[str, Any] | None = None, **context: Any) -> LossBase:
    """Build a registered loss; ``context`` offers what a loss may need (class counts, seed, ...).

    Only the context items the loss declares in ``info.needs`` are passed on, so callers
    can always offer everything they know.
    """
    cls = LOSSES.get(name)
    needs = cls.needs_for(dict(params or {}))
    wanted = {k: v for k, v in context.items() if k in needs and k in CONTEXT_NEEDS}
    return cls(**dict(params or {}), **wanted)
