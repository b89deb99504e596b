"""Model families, seeded and configured from the suite file."""

from lossbench.models import (  # noqa: F401  (register the families)
    cnn,
    mlp,
    retrieval,
    unet,
)
from lossbench.models.registry import MODELS

__all__ = ["MODELS"]
