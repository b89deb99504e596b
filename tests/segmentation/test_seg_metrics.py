"""Segmentation metrics on hand-drawn masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.metrics import METRICS
from lossbench.metrics.segmentation import betti_numbers, dice_score, hd95_score, iou_score

from .helpers import ring, two_blobs


def test_betti_numbers_of_known_shapes() -> None:
    assert betti_numbers(ring().astype(bool)) == (1, 1)
    assert betti_numbers(two_blobs().astype(bool)) == (2, 0)
    assert betti_numbers(np.zeros((5, 5), bool)) == (0, 0)
    # diagonal contact: two components with 4-connected foreground (the V-construction convention)
    diag = np.zeros((4, 4), bool)
    diag[1, 1] = diag[2, 2] = True
    assert betti_numbers(diag) == (2, 0)
    # a ring open to the border is not a hole
    open_ring = ring()
    open_ring[0:5, 4] = 0
    assert betti_numbers(open_ring.astype(bool))[1] == 0


def test_betti_errors_through_the_registry() -> None:
    g = np.stack([ring(), two_blobs()])
    p = np.stack([two_blobs(), two_blobs()]).astype(float)
    assert METRICS.get("betti0_error")(g, p) == pytest.approx(0.5)  # |2 - 1| and 0
    assert METRICS.get("betti1_error")(g, p) == pytest.approx(0.5)  # |0 - 1| and 0
    assert METRICS.get("betti_matching_error")(g, g.astype(float)) == 0.0


def test_dice_iou_known_values() -> None:
    g = np.zeros((4, 4), bool)
    g[0, :2] = True
    p = np.zeros((4, 4), bool)
    p[0, 1:3] = True
    assert dice_score(p, g) == pytest.approx(0.5)
    assert iou_score(p, g) == pytest.approx(1 / 3)
    empty = np.zeros((4, 4), bool)
    assert dice_score(empty, empty) == 1.0 and iou_score(empty, empty) == 1.0
    assert dice_score(empty, g) == 0.0


def test_hd95_known_and_empty() -> None:
    g = np.zeros((20, 20), bool)
    g[5:10, 5:10] = True
    p = np.roll(g, 2, axis=1)
    assert hd95_score(p, g) == pytest.approx(2.0)
    assert hd95_score(g, g) == 0.0
    empty = np.zeros_like(g)
    assert hd95_score(empty, empty) == 0.0
    assert hd95_score(empty, g) == pytest.approx(np.hypot(20, 20))


def test_cldice_metric() -> None:
    pytest.importorskip("skimage")
    g = np.zeros((1, 16, 16), np.uint8)
    g[0, 8, 2:14] = 1
    assert METRICS.get("cldice")(g, g.astype(float)) == pytest.approx(1.0)
    broken = g.astype(float).copy()
    broken[0, 8, 7:9] = 0
    assert 0.5 < METRICS.get("cldice")(g, broken) < 1.0
    assert METRICS.get("cldice")(g, np.zeros_like(broken)) == 0.0


def test_metric_directions() -> None:
    assert METRICS.get("dice").greater_is_better and not METRICS.get("hd95").greater_is_better
    assert not METRICS.get("betti_matching_error").bounded


def test_betti_matching_error_metric_is_relative_to_the_border() -> None:
    # as the paper's evaluation (relative=True): a missed stub hanging from the border is no topological error
    g = np.zeros((1, 9, 9), np.uint8)
    g[0, 0:4, 2] = g[0, 0:4, 6] = 1
    p = g.astype(float)
    p[0, :, 6] = 0
    assert METRICS.get("betti_matching_error")(g, p) == 0.0
    assert METRICS.get("betti0_error")(g, p) == 1.0  # the Betti number errors stay absolute
