"""Metrics, registered with their direction and the prediction kind they consume (every module here is imported)."""

from lossbench.metrics.base import METRICS, Metric, register_metric
from lossbench.registry import import_submodules

import_submodules(__name__, __path__)

__all__ = ["METRICS", "Metric", "register_metric"]
