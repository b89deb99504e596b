"""Helpers: trial specs for the image and one-class task types on small data."""

from __future__ import annotations

from typing import Any

from lossbench.objectives import parse_objective
from lossbench.specs import TrialSpec
from lossbench.suite import trial_config
from lossbench.trial import cached_dataset


def image_spec(loss: str, uri: str = "images:digits", seed: int = 0, task: str = "image", epochs: int = 2,
               options: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
               metrics: tuple[str, ...] = ("accuracy",), primary: str = "accuracy") -> TrialSpec:
    data = cached_dataset(uri)
    return TrialSpec(
        suite="image-test",
        suite_version="1",
        task=task,
        dataset=uri,
        data_hash=data.content_hash,
        objective=parse_objective(loss),
        seed=seed,
        config=trial_config(task, {
            "model": model or {"family": "cnn", "channels": [8, 16], "mlp_hidden": [32]},
            "training": {"epochs": epochs, "batch_size": 64, "lr": 0.005, "patience": 0},
            "split": {"test": 0.2, "val": 0.2},
            "options": options or {},
        }),
        metrics=metrics,
        primary_metric=primary,
    )
