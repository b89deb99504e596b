"""Loss functions: one ``torch.nn.Module`` per loss, one registry.

Importing this package registers every built-in loss::

    from lossbench.losses import LOSSES, make_loss
    loss = make_loss("focal", {"gamma": 1.0})
"""

from lossbench.losses import (  # noqa: F401  (importing registers the losses)
    anyloss,
    baselines,
    comp_sum,
    contrastive,
    ensloss,
    ldr,
    metric_learning,
    reweighting,
    segmentation,
    topology,
    xmc,
    z_loss,
)
from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import LOSSES, make_loss, register_loss

__all__ = ["LOSSES", "LossBase", "LossInfo", "Param", "make_loss", "register_loss"]
