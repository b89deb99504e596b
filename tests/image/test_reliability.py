"""Reliability diagrams: the bins agree with the ECE metric; one PNG per loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lossbench.metrics.classification import ece
from lossbench.report.reliability import reliability_bins, save_reliability_diagrams


def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (200, 4))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return rng.integers(0, 4, 200), proba


def test_bins_reproduce_ece() -> None:
    y, proba = sample()
    table = reliability_bins(y, proba)
    assert table["count"].sum() == len(y)
    filled = table[table["count"] > 0]
    weighted_gap = (filled["count"] * (filled["accuracy"] - filled["confidence"]).abs()).sum() / len(y)
    assert weighted_gap == pytest.approx(ece(y, proba))


def test_one_png_per_loss(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = save_reliability_diagrams({"ce": sample(), "focal:gamma=1": sample()}, tmp_path)
    assert [p.name for p in paths] == ["reliability-ce.png", "reliability-focal_gamma_1.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
