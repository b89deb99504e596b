"""Cubical persistence against cripser, the induced matching on known shapes, and the Betti matching loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch.nn import functional as F

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

from .helpers import border_line, half_ring, ring, two_blobs

#: The version-1 code (absolute homology only) on the seeded image of test_relative_false_reproduces_version_1.
GOLDEN_COST = 9.010194258185305
GOLDEN_ERROR = 28.0


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
    assert betti_matching_error(r, r, relative=False) == 0
    assert betti_matching_error(b, b, relative=False) == 0
    one = np.zeros_like(b)
    one[1:3, 1:3] = 1
    assert betti_matching_error(one, b, relative=False) == 1  # the missing blob
    assert betti_matching_error(np.zeros_like(r), r, relative=False) == 2  # a component and a hole, both missed
    # the ring's hole is filled by the second blob in max(P, G); its component matches the blobs'
    assert betti_matching_error(r, b, relative=False) == 2


def bar_counts(m: np.ndarray, relative: bool) -> tuple[int, int]:
    """Bars of a binary mask in dimensions 0 and 1 (matched with itself, every bar is matched)."""
    match = betti_matching(m.astype(float), m.astype(float), relative)
    assert all(len(d["p_un_birth_px"]) == len(d["g_un_birth_px"]) == 0 for d in match)
    return len(match[0]["p_birth_px"]), len(match[1]["p_birth_px"])


@pytest.mark.parametrize(("shape", "absolute", "relative"), [
    (border_line(), (1, 0), (1, 2)),  # joins the border ring: no own component; closes two loops with it
    (half_ring(), (1, 0), (1, 2)),  # the U's inside is a loop relative to the border, plus the frame
    (ring(), (1, 1), (2, 2)),  # away from the border: its component and hole, plus the ring and the frame
    (two_blobs(), (2, 0), (3, 1)),
    (np.zeros((9, 9), np.uint8), (0, 0), (0, 0)),  # the ring takes the image max, 0: no bars
    (np.ones((9, 9), np.uint8), (1, 0), (1, 0)),
])
def test_relative_and_absolute_bar_counts_of_known_shapes(
    shape: np.ndarray, absolute: tuple[int, int], relative: tuple[int, int]
) -> None:
    assert bar_counts(shape, relative=False) == absolute == betti_numbers(shape.astype(bool))
    assert bar_counts(shape, relative=True) == relative


def test_relative_bar_counts_are_betti_numbers_of_the_max_padded_mask() -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        m = ndimage.gaussian_filter(rng.random((14, 14)), 1) > 0.5
        padded = np.pad(m, 1, constant_values=m.max())
        assert bar_counts(m, relative=True) == betti_numbers(padded)


def test_relative_betti_matching_error_ignores_what_the_border_explains() -> None:
    stubs = np.zeros((9, 9))
    stubs[0:4, 2] = stubs[0:4, 6] = 1  # two stubs hanging from the top border
    one_stub = stubs.copy()
    one_stub[:, 6] = 0
    assert betti_matching_error(one_stub, stubs, relative=False) == 1  # a separate component in absolute homology
    assert betti_matching_error(one_stub, stubs, relative=True) == 0  # both belong to the border
    # a gap in a border-to-border line is an error either way: two components, or two loops against one
    gap = border_line().astype(float)
    gap[4, 4] = 0
    assert betti_matching_error(gap, border_line(), relative=False) == 1
    assert betti_matching_error(gap, border_line(), relative=True) == 1
    # missing a ring: its component and hole, and with the border the ring component and the frame
    assert betti_matching_error(np.zeros((9, 9)), ring(), relative=True) == 4


def test_relative_cost_is_the_absolute_cost_of_the_max_padded_image() -> None:
    # the reference pads with torch.max(P) (relative=True): value and gradient must agree with that
    p = torch.rand(12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64).requires_grad_(True)
    g = torch.as_tensor(ring(12) | border_line(12)) > 0
    cost = betti_matching_cost(p, g, relative=True)
    (grad,) = torch.autograd.grad(cost, p)
    frame = torch.ones(14, 14, dtype=torch.bool)
    frame[1:-1, 1:-1] = False
    padded = torch.where(frame, p.max(), F.pad(p, (1, 1, 1, 1)))
    reference = betti_matching_cost(padded, F.pad(g, (1, 1, 1, 1), value=True), relative=False)
    (ref_grad,) = torch.autograd.grad(reference, p)
    assert float(cost.detach()) == pytest.approx(float(reference.detach()), rel=1e-12)
    assert torch.allclose(grad, ref_grad)
    assert grad[np.unravel_index(int(p.argmax()), p.shape)] != 0  # the ring's bars reach the arg-max


@pytest.mark.parametrize("relative", [False, True])
def test_betti_matching_error_bounds_betti_error_and_is_symmetric(relative: bool) -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        p = ndimage.gaussian_filter(rng.random((16, 16)), 1) > 0.5
        g = ndimage.gaussian_filter(rng.random((16, 16)), 1) > 0.5
        if relative:  # relative Betti numbers: those of the mask inside a ring at its maximum
            bp, bg = (betti_numbers(np.pad(m, 1, constant_values=m.max())) for m in (p, g))
        else:
            bp, bg = betti_numbers(p), betti_numbers(g)
        betti_err = abs(bp[0] - bg[0]) + abs(bp[1] - bg[1])
        bm = betti_matching_error(p.astype(float), g.astype(float), relative=relative)
        assert bm >= betti_err
        assert bm == betti_matching_error(g.astype(float), p.astype(float), relative=relative)


@pytest.mark.parametrize("relative", [False, True])
def test_loss_is_zero_at_the_target_and_has_gradient_elsewhere(relative: bool) -> None:
    g = torch.as_tensor(ring(12) | half_ring(12))
    assert float(betti_matching_cost(g.double(), g > 0, relative=relative)) == 0.0
    p = (0.5 + 0.3 * torch.rand(12, 12, generator=torch.Generator().manual_seed(0))).double().requires_grad_(True)
    cost = betti_matching_cost(p, g > 0, relative=relative)
    cost.backward()
    assert float(cost.detach()) > 0 and p.grad is not None and p.grad.abs().sum() > 0


def test_relative_false_reproduces_version_1() -> None:
    # golden values of the version-1 (absolute homology) loss and metric, recorded before relative existed
    p = torch.rand(16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.as_tensor(ring(16) | half_ring(16)) > 0
    assert float(betti_matching_cost(p, g, relative=False)) == pytest.approx(GOLDEN_COST, rel=1e-12)
    assert betti_matching_error((p > 0.5).numpy(), g.numpy(), relative=False) == GOLDEN_ERROR


def test_matching_pairs_are_consistent() -> None:
    rng = np.random.default_rng(0)
    p = rng.random((16, 16))
    g = ring(16)
    for dim, m in enumerate(betti_matching(p, g, relative=False)):
        assert len(m["p_birth_px"]) == len(m["g_birth_px"])
        assert len(set(m["p_birth_px"].tolist())) == len(m["p_birth_px"])  # a bar is matched at most once
        if dim == 1:
            assert len(m["g_birth_px"]) + len(m["g_un_birth_px"]) == 1  # the ring's one hole
