"""Model families, seeded and configured from the suite file."""

from lossbench.models import mlp, retrieval  # noqa: F401  (registers the families)
from lossbench.models.registry import MODELS

__all__ = ["MODELS"]
