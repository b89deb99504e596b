"""Cubical persistence against cripser, the induced matching on known shapes, and the Betti matching loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from lossbench.losses.topology import (
    _dim_pairs,
    _dual_bars,
    _kernel,
    _persistence_kernel,
    _primal_bars,
    betti_matching,
    betti_matching_cost,
    betti_matching_error,
    grid_edges,
)
from lossbench.metrics.segmentation import betti_numbers

from .helpers import ring, two_blobs


def our_diagrams(p: np.ndarray) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Finite-length bars (birth, death) in F = 1 - P, dimension 0 (essential death 1) and 1."""
    h, w = p.shape
    fp = 1 - p.ravel().astype(float)
    eu, ev = grid_edges(h, w, False)
    (rows, _, _), _, _ = _dim_pairs(fp, fp, eu, ev, False)
    b, d = _primal_bars(rows, eu, ev, fp)
    dim0 = sorted((round(fp[x], 9), 1.0 if y < 0 else round(fp[y], 9)) for x, y in zip(b, d, strict=True)
                  if y < 0 or fp[y] > fp[x])
    eu, ev = grid_edges(h, w, True)
    fd = np.append(-fp, -np.inf)
    (rows, _, _), _, _ = _dim_pairs(fd, fd, eu, ev, True)
    b, d = _dual_bars(rows[rows[:, 1] >= 0], eu, ev, fd)
    dim1 = sorted((round(fp[x], 9), round(fp[y], 9)) for x, y in zip(b, d, strict=True) if fp[y] > fp[x])
    return dim0, dim1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_barcodes_match_cripser_v_construction(seed: int) -> None:
    cripser = pytest.importorskip("cripser")
    rng = np.random.default_rng(seed)
    p = ndimage.gaussian_filter(rng.random((24, 24)), 1.2)
    p = (p - p.min()) / np.ptp(p)
    ph = cripser.computePH(1 - p, maxdim=1)  # V-construction, sublevel of 1 - P (= superlevel of P)
    ref0 = sorted((round(r[1], 9), 1.0 if r[2] > 1e10 else round(r[2], 9)) for r in ph if r[0] == 0 and r[2] > r[1])
    ref1 = sorted((round(r[1], 9), round(r[2], 9)) for r in ph if r[0] == 1 and r[2] > r[1])
    dim0, dim1 = our_diagrams(p)
    assert dim0 == ref0
    assert dim1 == ref1


def test_plain_python_kernel_equals_compiled() -> None:
    rng = np.random.default_rng(3)
    f = rng.random(36)
    eu, ev = grid_edges(6, 6, False)
    order = np.argsort(f, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(36)
    hi, lo = np.maximum(rank[eu], rank[ev]), np.minimum(rank[eu], rank[ev])
    edge_order = np.argsort(hi * 36 + lo)
    args = (f, f, eu, ev, edge_order, order, rank)
    assert np.array_equal(_persistence_kernel(*args), _kernel()(*args))


def test_betti_matching_error_on_known_shapes() -> None:
    r, b = ring().astype(float), two_blobs().astype(float)
    assert betti_matching_error(r, r) == 0
    assert betti_matching_error(b, b) == 0
    one = np.zeros_like(b)
    one[1:3, 1:3] = 1
    assert betti_matching_error(one, b) == 1  # the missing blob
    assert betti_matching_error(np.zeros_like(r), r) == 2  # a component and a hole, both missed
    # the ring's hole is filled by the second blob in max(P, G); its component matches the blobs'
    assert betti_matching_error(r, b) == 2


def test_betti_matching_error_bounds_betti_error_and_is_symmetric() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        p = ndimage.gaussian_filter(rng.random((16, 16)), 1) > 0.5
        g = ndimage.gaussian_filter(rng.random((16, 16)), 1) > 0.5
        bp, bg = betti_numbers(p), betti_numbers(g)
        betti_err = abs(bp[0] - bg[0]) + abs(bp[1] - bg[1])
        bm = betti_matching_error(p.astype(float), g.astype(float))
        assert bm >= betti_err
        assert bm == betti_matching_error(g.astype(float), p.astype(float))


def test_loss_is_zero_at_the_target_and_has_gradient_elsewhere() -> None:
    g = torch.as_tensor(ring(12))
    assert float(betti_matching_cost(g.double(), g > 0)) == 0.0
    p = (0.5 + 0.3 * torch.rand(12, 12, generator=torch.Generator().manual_seed(0))).double().requires_grad_(True)
    cost = betti_matching_cost(p, g > 0)
    cost.backward()
    assert float(cost.detach()) > 0 and p.grad is not None and p.grad.abs().sum() > 0


def test_matching_pairs_are_consistent() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((16, 16))
    g = ring(16)
    for dim, m in enumerate(betti_matching(p, g)):
        assert len(m["p_birth_px"]) == len(m["g_birth_px"])
        assert len(set(m["p_birth_px"].tolist())) == len(m["p_birth_px"])  # a bar is matched at most once
        if dim == 1:
            assert len(m["g_birth_px"]) + len(m["g_un_birth_px"]) == 1  # the ring's one hole
