"""Small hand-drawn masks and a tiny segmentation suite shared by the segmentation tests."""

from __future__ import annotations

from typing import Any

import numpy as np


def ring(size: int = 9) -> np.ndarray:
    """A square annulus: one component, one hole."""
    m = np.zeros((size, size), np.uint8)
    m[2:7, 2:7] = 1
    m[3:6, 3:6] = 0
    return m


def two_blobs(size: int = 9) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    m[1:3, 1:3] = 1
    m[5:8, 5:8] = 1
    return m


def border_line(size: int = 9) -> np.ndarray:
    """A horizontal line from the left border to the right border."""
    m = np.zeros((size, size), np.uint8)
    m[size // 2] = 1
    return m


def half_ring(size: int = 9) -> np.ndarray:
    """A U whose two arms touch the top border: open in absolute homology, a loop relative to the border."""
    m = np.zeros((size, size), np.uint8)
    m[0:6, 2] = m[0:6, 6] = 1
    m[5, 2:7] = 1
    return m


def tiny_suite(**overrides: Any) -> dict[str, Any]:
    suite: dict[str, Any] = {
        "name": "seg-tiny",
        "version": "1",
        "task": "segmentation",
        "datasets": ["seg:vessels#size=32&n=16"],
        "losses": ["bce"],
        "seeds": 1,
        "primary_metric": "dice",
        "metrics": ["iou", "cldice", "betti0_error", "betti1_error", "betti_matching_error", "hd95"],
        "model": {"family": "unet", "channels": [4, 8]},
        "training": {"epochs": 1, "batch_size": 4, "patience": 0},
    }
    suite.update(overrides)
    return suite
