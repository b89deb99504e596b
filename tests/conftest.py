"""Shared fixtures: a tiny, fast suite on generated data."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossbench.suite import Suite, parse_suite

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

TINY = {
    "name": "tiny",
    "version": "1",
    "task": "classification",
    "datasets": ["synthetic:classification#n=300&minority=0.3"],
    "losses": ["ce", "focal"],
    "seeds": 2,
    "primary_metric": "balanced_accuracy",
    "metrics": ["accuracy", "auroc"],
    "model": {"family": "mlp", "hidden": [16]},
    "training": {"epochs": 3, "batch_size": 32, "patience": 0},
}

TINY_TOML = """
name = "tiny"
version = "1"
task = "classification"
datasets = ["synthetic:classification#n=300&minority=0.3", "synthetic:classification#n=200&classes=3&minority=0.3"]
losses = ["ce", "focal"]
seeds = 2
primary_metric = "balanced_accuracy"
metrics = ["accuracy", "auroc"]

[model]
family = "mlp"
hidden = [16]

[training]
epochs = 3
batch_size = 32
patience = 0
"""


@pytest.fixture
def tiny_suite() -> Suite:
    return parse_suite(dict(TINY), "tiny.toml")


@pytest.fixture
def tiny_suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the shared reference data only exists on development machines")
    return SHARED
