"""The metric registry: each metric is a function plus what it needs and its direction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench.registry import Registry


@dataclass(frozen=True)
class Metric:
    """A metric function with the metadata the report, compare and gate rely on."""

    name: str
    fn: Callable[..., float]
    greater_is_better: bool
    tasks: frozenset[str]
    bounded: bool  # values lie in [0, 1]; compare uses an absolute equivalence margin then
    description: str
    thresholded: bool = False  # depends on a decision threshold (binary): has a *_tuned variant

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        return float(self.fn(*args, **kwargs))


METRICS: Registry[Metric] = Registry("metric", entry_point_group="lossbench.metrics")


def register_metric(
    name: str,
    *,
    greater_is_better: bool,
    tasks: frozenset[str],
    bounded: bool = True,
    description: str = "",
    thresholded: bool = False,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    def add(fn: Callable[..., float]) -> Callable[..., float]:
        metric = Metric(name, fn, greater_is_better, tasks, bounded, description or (fn.__doc__ or "").strip(),
                        thresholded)
        METRICS.register(name, metric, greater_is_better=greater_is_better)
        return fn

    return add


def is_finite(value: float) -> bool:
    return bool(np.isfinite(value))
