"""Metrics, registered with their direction and the tasks they apply to."""

from lossbench.metrics import classification, segmentation  # noqa: F401  (register the metrics)
from lossbench.metrics.base import METRICS, Metric, register_metric

__all__ = ["METRICS", "Metric", "register_metric"]
