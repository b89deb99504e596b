"""Model families, seeded and configured from the suite file."""

from lossbench.models import mlp  # noqa: F401  (registers the family)
from lossbench.models.registry import MODELS

__all__ = ["MODELS"]
