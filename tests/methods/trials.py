"""Helpers: build a small trial on synthetic data and run it through the real trial path."""

from __future__ import annotations

from typing import Any

from lossbench.objectives import parse_objective
from lossbench.specs import TrialSpec
from lossbench.suite import trial_config
from lossbench.trial import cached_dataset

URI = "synthetic:classification#n=300"


def make_spec(loss: str, seed: int = 0, uri: str = URI, epochs: int = 3, **training: Any) -> TrialSpec:
    data = cached_dataset(uri)
    return TrialSpec(
        suite="methods-test",
        suite_version="1",
        task="classification",
        dataset=uri,
        data_hash=data.content_hash,
        objective=parse_objective(loss),
        seed=seed,
        config=trial_config("classification", {
            "model": {"family": "mlp", "hidden": [16, 16]},
            "training": {"epochs": epochs, "batch_size": 32, "lr": 0.01, "patience": 0, **training},
            "split": {"test": 0.25, "val": 0.25},
        }),
        metrics=("accuracy", "log_loss", "ece"),
        primary_metric="accuracy",
    )
