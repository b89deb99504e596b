"""Model families, seeded and configured from the suite file."""

from lossbench.models import mlp, unet  # noqa: F401  (register the families)
from lossbench.models.registry import MODELS

__all__ = ["MODELS"]
