"""Metrics of a trained model on one split: one generic evaluation for every task type.

The task predicts what the metrics declared they consume (:attr:`Metric.input`), once per split; each metric
gets its own kind. Thresholded metrics (``labels``) are taken at 0.5; their ``_tuned`` variants at the threshold
that maximises them on the validation split (the training rows when there is none): the threshold is chosen from
validation predictions only, so the test split can never choose one. Evaluated off the validation split, every
thresholded metric ``m`` also reports ``m_tuned`` and, on binary data, the threshold as ``m_threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lossbench.metrics import METRICS
from lossbench.metrics.threshold import best_threshold

if TYPE_CHECKING:
    from torch import nn

    from lossbench.tasks.base import Prepared, TaskType

#: What a task predicts on one split: kind -> the arguments its metrics are called with (see lossbench.metrics.base).
Predictions = Mapping[str, tuple[Any, ...]]
#: The split on which ``_tuned`` metrics choose their threshold.
TUNING_SPLIT = "val"


def evaluate(task: TaskType, model: nn.Module, prepared: Prepared, split: str, metrics: Sequence[str],
             predictions: Predictions | None = None) -> dict[str, float]:
    """``metrics`` of ``model`` on ``split``; ``predictions`` when the caller already has them (stacked seeds)."""
    resolved = [METRICS.get(m) for m in metrics]
    if predictions is None:
        predictions = task.predict(model, prepared, split, frozenset(m.prediction for m in resolved))
    out = {}
    for metric in resolved:
        if metric.input != "tuned_labels":
            args = predictions.get(metric.prediction)
            out[metric.name] = metric(*args) if args is not None else math.nan  # a model without features, ...
    tuned = [m.tuned_of for m in resolved if m.tuned_of]
    if split != TUNING_SPLIT:
        tuned += [m.name for m in resolved if m.thresholded]
    tuned = list(dict.fromkeys(tuned))
    if tuned and "proba" in predictions:
        out.update(tuned_metrics(task, model, prepared, split, tuned, predictions["proba"]))
    return out


def tuned_metrics(task: TaskType, model: nn.Module, prepared: Prepared, split: str, names: Sequence[str],
                  proba_args: tuple[Any, ...]) -> dict[str, float]:
    """``<name>_tuned`` (and ``<name>_threshold``) of each thresholded metric: the threshold comes from validation."""
    y, proba = proba_args
    if proba.shape[1] != 2:  # multi-class decisions are the arg-max: nothing to tune
        return {f"{name}_tuned": METRICS.get(name)(y, proba) for name in names}
    tune_split = TUNING_SPLIT if prepared.val is not None else "train"
    if tune_split == split:  # the tuning split itself: its best value (what early stopping on m_tuned uses)
        y_tune, p_tune = y, proba
    else:
        y_tune, p_tune = task.predict(model, prepared, tune_split, frozenset({"proba"}))["proba"]
    out = {}
    for name in names:
        base = METRICS.get(name)
        threshold, best = best_threshold(base, y_tune, p_tune)
        out[f"{name}_tuned"] = best if tune_split == split else base(y, proba, threshold=threshold)
        if split != tune_split:
            out[f"{name}_threshold"] = threshold
    return out


def metrics_for(task: TaskType) -> list[str]:
    """The registered metrics ``task`` can feed."""
    return [e.name for e in METRICS if e.obj.prediction in task.predictions]
