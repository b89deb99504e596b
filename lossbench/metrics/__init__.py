"""Metrics, registered with their direction and the tasks they apply to."""

from lossbench.metrics import (  # noqa: F401  (register the metrics)
    classification,
    collapse,
    detection,
    retrieval,
    segmentation,
)
from lossbench.metrics.base import METRICS, Metric, register_metric

__all__ = ["METRICS", "Metric", "register_metric"]
