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
    #: Vectorised form on confusion counts (arrays tp, fp, tn, fn → values), so a threshold sweep is one pass.
    from_counts: Callable[..., np.ndarray] | None = None
    #: For ``<name>_tuned``: the thresholded metric it evaluates at the threshold tuned on validation data.
    tuned_of: str = ""
    #: The values the metric can take, when not [0, 1] (``bounded``) or the whole real line: MCC (-1, 1),
    #: log loss (0, inf). Confidence intervals are kept inside it.
    limits: tuple[float, float] | None = None

    @property
    def value_range(self) -> tuple[float, float]:
        if self.limits is not None:
            return self.limits
        return (0.0, 1.0) if self.bounded else (float("-inf"), float("inf"))

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
    from_counts: Callable[..., np.ndarray] | None = None,
    limits: tuple[float, float] | None = None,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register a metric; a thresholded one also gets ``<name>_tuned`` (see :mod:`lossbench.metrics.threshold`)."""

    def add(fn: Callable[..., float]) -> Callable[..., float]:
        metric = Metric(name, fn, greater_is_better, tasks, bounded, description or (fn.__doc__ or "").strip(),
                        thresholded, from_counts, limits=limits)
        METRICS.register(name, metric, greater_is_better=greater_is_better)
        if thresholded:
            register_tuned(metric)
        return fn

    return add


def register_tuned(base: Metric) -> Metric:
    """``<name>_tuned``: ``base`` at the binary threshold that maximises it on the tuning (validation) split.

    Called on the tuning split itself, its value is the best achievable there; the task applies the chosen
    threshold to the other splits. On multi-class data the decision is the arg-max, so it equals ``base``.
    """
    from lossbench.metrics.threshold import best_threshold

    def tuned(y: np.ndarray, proba: np.ndarray) -> float:
        if proba.shape[1] != 2:
            return base(y, proba)
        return best_threshold(base, y, proba)[1]

    metric = Metric(f"{base.name}_tuned", tuned, base.greater_is_better, base.tasks, base.bounded,
                    f"{base.description.rstrip('.')}, at the threshold tuned on the validation split.",
                    False, None, base.name, base.limits)
    METRICS.register(metric.name, metric, greater_is_better=base.greater_is_better)
    return metric
