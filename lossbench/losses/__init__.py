"""Loss functions: one ``torch.nn.Module`` per loss, one registry.

Importing this package registers every built-in loss::

    from lossbench.losses import LOSSES, make_loss
    loss = make_loss("focal", {"gamma": 1.0})
"""

from lossbench.losses import anyloss, baselines  # noqa: F401  (registers the losses)
from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import LOSSES, make_loss, register_loss

__all__ = ["LOSSES", "LossBase", "LossInfo", "Param", "make_loss", "register_loss"]
