"""The metric registry: each metric is a function, the predictions it consumes, and its direction.

A metric declares its ``input``, the kind of prediction it is called with (as a scikit-learn scorer declares its
``response_method``); a task type declares the kinds it can predict (``TaskType.predictions``), and the one
generic :func:`lossbench.evaluation.evaluate` feeds each metric what it declared. The kinds and their arguments:

==============  ===========================  ==================================================================
``input``       called as                    what
==============  ===========================  ==================================================================
``proba``       ``fn(y, proba)``             class probabilities (n, K) and integer labels
``labels``      ``fn(y, proba, threshold)``  hard labels at a decision threshold: 0.5, binary; arg-max, else
``tuned_labels``  (as ``labels``)            the same at the threshold tuned on the validation split
``features``    ``fn(y, h)``                 penultimate features (n, d)
``embeddings``  ``fn(embeddings, labels)``   unit-normalised embeddings and the labels that define relevance
``ranking``     ``fn(scores, relevant)``     query × item scores (-inf: excluded) and boolean relevance
``masks``       ``fn(masks, prob)``          segmentation masks (N, H, W) and foreground probabilities
==============  ===========================  ==================================================================

A new kind needs no edit here: a task that predicts it lists it in ``predictions`` and returns it from
``predict``; a metric that consumes it names it as its ``input``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench.registry import Registry

#: Kinds a task does not predict itself: they are derived from another kind by the evaluation.
DERIVED = {"labels": "proba", "tuned_labels": "proba"}


@dataclass(frozen=True)
class Metric:
    """A metric function with the metadata the evaluation, report, compare and gate rely on."""

    name: str
    fn: Callable[..., float]
    greater_is_better: bool
    tasks: frozenset[str]
    bounded: bool  # values lie in [0, 1]; compare uses an absolute equivalence margin then
    description: str
    input: str = "proba"  # the prediction kind it consumes (see the module docstring)
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

    @property
    def thresholded(self) -> bool:
        """Depends on a decision threshold: has a ``<name>_tuned`` variant."""
        return self.input == "labels"

    @property
    def prediction(self) -> str:
        """The kind of prediction a task must make for this metric (``labels`` are made from ``proba``)."""
        return DERIVED.get(self.input, self.input)

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        return float(self.fn(*args, **kwargs))


METRICS: Registry[Metric] = Registry("metric", entry_point_group="lossbench.metrics")


def register_metric(
    name: str,
    *,
    greater_is_better: bool,
    tasks: frozenset[str],
    input: str = "proba",
    bounded: bool = True,
    description: str = "",
    from_counts: Callable[..., np.ndarray] | None = None,
    limits: tuple[float, float] | None = None,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register a metric that consumes ``input`` predictions; one on ``labels`` also gets ``<name>_tuned``."""

    def add(fn: Callable[..., float]) -> Callable[..., float]:
        metric = Metric(name, fn, greater_is_better, tasks, bounded, description or (fn.__doc__ or "").strip(),
                        input, from_counts, limits=limits)
        METRICS.register(name, metric, greater_is_better=greater_is_better)
        if metric.thresholded:
            register_tuned(metric)
        return fn

    return add


def register_tuned(base: Metric) -> Metric:
    """``<name>_tuned``: ``base`` at the binary threshold that maximises it on the validation split.

    The evaluation chooses that threshold on validation predictions only and applies it to the split it
    evaluates. On multi-class data the decision is the arg-max, so it equals ``base``.
    """
    metric = Metric(f"{base.name}_tuned", base.fn, base.greater_is_better, base.tasks, base.bounded,
                    f"{base.description.rstrip('.')}, at the threshold tuned on the validation split.",
                    "tuned_labels", None, base.name, base.limits)
    METRICS.register(metric.name, metric, greater_is_better=base.greater_is_better)
    return metric
