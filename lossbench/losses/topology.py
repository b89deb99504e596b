"""Betti matching: cubical persistence, image persistence and the induced matching of barcodes, in 2-D.

After Stucki, Paetzold, Shit, Menze & Bauer (2023), "Topologically faithful image segmentation via
induced matching of persistence barcodes", ICML (arXiv 2211.15272); reference code
``nstucki/Betti-matching`` (``BettiMatching.py``) and the C++ ``nstucki/Betti-Matching-3D``, which
also computes dimension 0 with union-find and the top dimension through duality.

Conventions (those of the paper): superlevel filtration of the foreground probability P, i.e.
sublevel of F = 1 - P, on the V-construction (pixels are vertices): foreground is 4-connected and
background 8-connected. Dimension 0 is union-find over 4-neighbour edges; dimension 1 is
dimension 0 of the dual (8-neighbour edges on -F plus one outside vertex next to every border
pixel), by Alexander duality. ``cripser.computePH`` computes the same V-construction barcodes
(gudhi's ``CubicalComplex(top_dimensional_cells=...)`` is the T-construction and swaps the
connectivities); tests check ours against cripser. Ties are broken by pixel index everywhere, so a
bar is identified by its birth vertex and its death edge, and the induced matching is a lookup on those.

``relative=True`` (the reference's default, ``relative: True`` in its configs and in ``evaluation.py``)
pads P, G and C with a one-pixel ring at each image's maximum before anything else, as the reference's
``CubicalPersistence`` does for the superlevel filtration: the ring is foreground from the first
level on, so a structure touching the image border is part of the ring's component (not a separate
component) and a curve from border to border closes a loop (the ring itself encloses one more, the
frame). Pixel indices are mapped back to the image; a ring pixel maps to the image's arg-max, which
holds the ring's value, so its gradient goes there, as padding with ``torch.max(P)`` gives (on exact
ties torch spreads it over the tied pixels; we give it to the first).

Induced matching, per dimension: bars of P map to bars of im(P → C) with the same birth vertex
(a surjection keeps births), those map to bars of the comparison image C = max(P, G) with the same
death edge (an injection keeps deaths); likewise for G; P and G bars are matched when they reach
the same bar of C. Loss (paper eq.): sum over matched (p, g) of 2((b_p - b_g)^2 + (d_p - d_g)^2)
plus, over unmatched bars q of P and G, (b_q - d_q)^2; the essential dimension-0 bar dies at P = 0.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from lossbench.errors import LossInputError
from lossbench.losses.base import LossInfo, Param
from lossbench.losses.registry import register_loss
from lossbench.losses.segmentation import MaskLoss, foreground_prob, soft_dice_per_image

ESSENTIAL = -1  # death edge of a bar that never dies


def _persistence_kernel(fx: np.ndarray, fy: np.ndarray, eu: np.ndarray, ev: np.ndarray, edge_order: np.ndarray,
                        x_order: np.ndarray, x_rank: np.ndarray) -> np.ndarray:
    """Dimension-0 image persistence of the inclusion X ⊆ Y of sublevel filtrations (fx >= fy).

    Y's edges are processed in ``edge_order``; a vertex joins X at fx (after Y's edges of the same
    value). A component of Y carries the elder (by ``x_rank``) X-vertex it contains; when an edge
    joins two components that both carry one, the younger class dies there. fx = fy gives the
    ordinary barcode. Returns rows (birth vertex, death edge or ESSENTIAL).
    """
    n = fx.shape[0]
    parent = np.arange(n)
    born = np.full(n, -1, np.int64)
    out = np.empty((n, 2), np.int64)
    k = 0
    xi = 0
    for j in range(edge_order.shape[0]):
        e = edge_order[j]
        u = eu[e]
        v = ev[e]
        t = max(fy[u], fy[v])
        while xi < n and fx[x_order[xi]] < t:
            w = x_order[xi]
            r = w
            while parent[r] != r:
                parent[r] = parent[parent[r]]
                r = parent[r]
            if born[r] < 0:
                born[r] = w
            xi += 1
        a = u
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        b = v
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a == b:
            continue
        ba = born[a]
        bb = born[b]
        if ba >= 0 and bb >= 0:
            if x_rank[ba] > x_rank[bb]:  # the younger class dies (elder rule)
                out[k, 0] = ba
                out[k, 1] = e
                parent[a] = b
            else:
                out[k, 0] = bb
                out[k, 1] = e
                parent[b] = a
            k += 1
        else:
            parent[b] = a
            born[a] = max(ba, bb)
    while xi < n:
        w = x_order[xi]
        r = w
        while parent[r] != r:
            r = parent[r]
        if born[r] < 0:
            born[r] = w
        xi += 1
    for w in range(n):
        if parent[w] == w and born[w] >= 0:
            out[k, 0] = born[w]
            out[k, 1] = -1
            k += 1
    return out[:k]


@functools.cache
def _kernel() -> Any:
    """The kernel compiled with numba when it is installed (about 40× faster per image), else plain Python."""
    try:
        import numba
    except ImportError:  # pragma: no cover - exercised where numba is absent
        return _persistence_kernel
    return numba.njit(cache=True, nogil=True)(_persistence_kernel)


@functools.cache
def grid_edges(h: int, w: int, dual: bool) -> tuple[np.ndarray, np.ndarray]:
    """4-neighbour edges (primal), or 8-neighbour edges plus edges to an outside vertex h*w (dual).

    Cached per image size and shared by every call, so the arrays are read-only.
    """
    idx = np.arange(h * w).reshape(h, w)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]
    if dual:
        pairs += [(idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]
        border = np.unique(np.concatenate([idx[0], idx[-1], idx[:, 0], idx[:, -1]]))
        pairs.append((border, np.full_like(border, h * w)))
    eu = np.concatenate([a.ravel() for a, _ in pairs]).astype(np.int64)
    ev = np.concatenate([b.ravel() for _, b in pairs]).astype(np.int64)
    eu.flags.writeable = ev.flags.writeable = False
    return eu, ev


def _ranks(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(f, kind="stable")  # ties by index
    rank = np.empty_like(order)
    rank[order] = np.arange(len(f))
    return order, rank


class _Filtration:
    """One sublevel filtration on a grid graph, with its vertex order and edge order."""

    def __init__(self, f: np.ndarray, eu: np.ndarray, ev: np.ndarray) -> None:
        self.f = f
        self.order, self.rank = _ranks(f)
        n = len(f)
        hi = np.maximum(self.rank[eu], self.rank[ev])
        lo = np.minimum(self.rank[eu], self.rank[ev])
        # edges by value, ties by vertex ranks; keys are unique, so any sort is deterministic
        self.edge_order = np.argsort(hi * n + lo)


def _run(x: _Filtration, y: _Filtration, eu: np.ndarray, ev: np.ndarray) -> np.ndarray:
    return _kernel()(x.f, y.f, eu, ev, y.edge_order, x.order, x.rank)


def _dim_pairs(fp: np.ndarray, fg: np.ndarray, eu: np.ndarray, ev: np.ndarray, dual: bool) -> list[Any]:
    """Plain and image persistence runs for one dimension; in the dual the inclusion is reversed."""
    # the comparison image max(P, G): F = min in the primal, -F = max in the dual
    fc = np.maximum(fp, fg) if dual else np.minimum(fp, fg)
    P, G, C = (_Filtration(f, eu, ev) for f in (fp, fg, fc))
    plain = [_run(z, z, eu, ev) for z in (P, G, C)]
    # dual (-F): C's sublevel sets lie inside P's, so the image runs go C → P and C → G
    images = [_run(C, P, eu, ev), _run(C, G, eu, ev)] if dual else [_run(P, C, eu, ev), _run(G, C, eu, ev)]
    return [plain, images, (P, G, C)]


def _match_one(src: np.ndarray, img: np.ndarray, tgt: np.ndarray, by_birth_first: bool) -> np.ndarray:
    """For each row of ``src``, the row of ``tgt`` it reaches through the image bars ``img`` (-1: none).

    A source bar and its image bar share the key in column k1 (birth vertex, or death edge in the
    dual); the image bar and its target bar share column k2.
    """
    k1, k2 = (0, 1) if by_birth_first else (1, 0)
    size = int(max(src[:, k1].max(initial=0), img.max(initial=0), tgt[:, k2].max(initial=0))) + 2
    # keys are >= -1 (essential death edge); shift by one to index lookup tables
    src_of = np.full(size, -1, np.int64)
    src_of[src[:, k1] + 1] = np.arange(len(src))
    tgt_of = np.full(size, -1, np.int64)
    tgt_of[tgt[:, k2] + 1] = np.arange(len(tgt))
    out = np.full(len(src), -1, np.int64)
    a, b = src_of[img[:, k1] + 1], tgt_of[img[:, k2] + 1]
    ok = (a >= 0) & (b >= 0)
    out[a[ok]] = b[ok]
    return out


def _pad_max(a: np.ndarray) -> np.ndarray:
    """``a`` inside a one-pixel ring at its maximum (the reference's ``relative`` padding, superlevel)."""
    return np.pad(a, 1, constant_values=a.max())


def _unpad(px: np.ndarray, h: int, w: int, ring: int) -> np.ndarray:
    """Flat indices into the padded (h+2, w+2) image → indices into the (h, w) image; ring pixels → ``ring``."""
    r, c = np.divmod(px, w + 2)
    inside = (r >= 1) & (r <= h) & (c >= 1) & (c <= w)
    return np.where(px < 0, px, np.where(inside, (r - 1) * w + (c - 1), ring))


def betti_matching(p: np.ndarray, g: np.ndarray, relative: bool = True) -> list[dict[str, np.ndarray]]:
    """Matched and unmatched bars of P (foreground probability) and G (binary mask), per dimension 0 and 1.

    Returns one dict per dimension with pixel coordinates and values in P/G units:
    ``p_birth_px, p_death_px, g_birth_px, g_death_px`` for matched pairs, ``p_un_birth_px, p_un_death_px``
    and ``g_un_*`` for unmatched bars (death pixel -1: the essential bar, dying at P = 0).
    ``relative``: pad both with a ring at their maximum first (relative homology; see the module notes).
    """
    if not relative:
        return _betti_matching(p, g)
    h, w = p.shape
    # padding each image on its own equals padding after max(P, G): the ring of C is max(max P, max G)
    result = _betti_matching(_pad_max(p), _pad_max(g))
    # the ring holds the image maximum: its pixels read P (and take P's gradient) at the arg-max
    rings = {"p": int(np.argmax(p)), "g": int(np.argmax(g))}
    out: list[dict[str, np.ndarray]] = []
    for m in result:  # one _unpad per image and dimension: each array on its own cost more than the matching
        keys = list(m)
        flat = {side: _unpad(np.concatenate([m[k] for k in keys if k[0] == side]), h, w, rings[side])
                for side in rings}
        ends = {side: np.cumsum([len(m[k]) for k in keys if k[0] == side])[:-1] for side in rings}
        parts = {side: iter(np.split(flat[side], ends[side])) for side in rings}
        out.append({k: next(parts[k[0]]) for k in keys})
    return out


def _betti_matching(p: np.ndarray, g: np.ndarray) -> list[dict[str, np.ndarray]]:
    """:func:`betti_matching` in absolute homology."""
    h, w = p.shape
    fp = 1.0 - p.astype(np.float64).ravel()
    fg = 1.0 - g.astype(np.float64).ravel()
    result = []
    for dim in (0, 1):
        dual = dim == 1
        eu, ev = grid_edges(h, w, dual)
        if dual:
            fpd = np.append(-fp, -np.inf)
            fgd = np.append(-fg, -np.inf)
            runs, images, _ = _dim_pairs(fpd, fgd, eu, ev, True)
            # the outside vertex's essential class is not a loop
            (bp, bg, bc), (ip, ig) = ([r[r[:, 1] >= 0] for r in rs] for rs in (runs, images))
            # dual bars (vertex b, edge e) are primal bars born at the edge's lower-F pixel, dying at b
            m_p = _match_one(bp, ip, bc, by_birth_first=False)  # P ← im (death edge), im → C (birth vertex)
            m_g = _match_one(bg, ig, bc, by_birth_first=False)
            to_bars = [_dual_bars(x, eu, ev, f) for x, f in ((bp, fpd), (bg, fgd))]
        else:
            (bp, bg, bc), (ip, ig), _ = _dim_pairs(fp, fg, eu, ev, False)
            m_p = _match_one(bp, ip, bc, by_birth_first=True)
            m_g = _match_one(bg, ig, bc, by_birth_first=True)
            to_bars = [_primal_bars(x, eu, ev, f) for x, f in ((bp, fp), (bg, fg))]
        (pb, pd), (gb, gd) = to_bars
        # an essential bar born at F = 1 (an empty prediction or mask) has zero length: not a bar
        f_p, f_g = (fpd, fgd) if dual else (fp, fg)
        valid_p = (pd >= 0) | (f_p[pb] < 1)
        valid_g = (gd >= 0) | (f_g[gb] < 1)
        m_p[~valid_p] = -1
        m_g[~valid_g] = -1
        g_of_c = np.full(len(bc) + 1, -1, np.int64)
        g_of_c[m_g[m_g >= 0]] = np.flatnonzero(m_g >= 0)
        mp = np.flatnonzero((m_p >= 0) & (g_of_c[np.maximum(m_p, 0)] >= 0))
        mg = g_of_c[m_p[mp]]
        un_p = np.setdiff1d(np.flatnonzero(valid_p), mp)
        un_g = np.setdiff1d(np.flatnonzero(valid_g), mg)
        result.append({
            "p_birth_px": pb[mp], "p_death_px": pd[mp], "g_birth_px": gb[mg], "g_death_px": gd[mg],
            "p_un_birth_px": pb[un_p], "p_un_death_px": pd[un_p],
            "g_un_birth_px": gb[un_g], "g_un_death_px": gd[un_g],
        })
    return result


def _primal_bars(rows: np.ndarray, eu: np.ndarray, ev: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    births = rows[:, 0]
    e = rows[:, 1]
    ess = e < 0
    u, v = eu[np.where(ess, 0, e)], ev[np.where(ess, 0, e)]
    death = np.where(f[u] >= f[v], u, v)  # the pixel whose value the edge takes
    return births, np.where(ess, -1, death)


def _dual_bars(rows: np.ndarray, eu: np.ndarray, ev: np.ndarray, fd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = rows[:, 1] >= 0  # the outside vertex's class is not a loop
    rows = rows[keep]
    e = rows[:, 1]
    u, v = eu[e], ev[e]
    birth = np.where(fd[u] >= fd[v], u, v)  # max of -F = min of F: when the loop closes
    return birth, rows[:, 0]


def bars_values(p: torch.Tensor, px: np.ndarray) -> torch.Tensor:
    """P at pixel indices; index -1 (essential death) reads 0."""
    flat = p.reshape(-1)
    idx = torch.as_tensor(np.maximum(px, 0), device=p.device)
    vals = flat[idx]
    return torch.where(torch.as_tensor(px < 0, device=p.device), torch.zeros_like(vals), vals)


#: The pixel arrays of one dimension's matching that the cost reads, in the order it reads them.
_P_KEYS = ("p_birth_px", "p_death_px", "p_un_birth_px", "p_un_death_px")
_G_KEYS = ("g_birth_px", "g_death_px", "g_un_birth_px", "g_un_death_px")


def betti_matching_cost(p: torch.Tensor, g: torch.Tensor, dims: tuple[int, ...] = (0, 1),
                        relative: bool = True) -> torch.Tensor:
    """The Betti matching loss of one image; differentiable in ``p`` at the birth and death pixels."""
    matching = betti_matching(p.detach().cpu().numpy(), g.detach().cpu().numpy(), relative)
    gf = g.to(p.dtype)
    # One gather from P and one from G for every bar of every dimension (two per array was most of the
    # cost on small images); the sums below are the same, term by term and in the same order.
    ms = [matching[dim] for dim in dims]
    p_vals = bars_values(p, np.concatenate([m[k] for m in ms for k in _P_KEYS]))
    g_vals = bars_values(gf, np.concatenate([m[k] for m in ms for k in _G_KEYS]))
    p_parts = p_vals.split([len(m[k]) for m in ms for k in _P_KEYS])
    g_parts = g_vals.split([len(m[k]) for m in ms for k in _G_KEYS])
    total = p.new_zeros(())
    for i in range(len(ms)):
        bp, dp, ub, ud = p_parts[4 * i: 4 * i + 4]
        bg, dg, gb, gd = g_parts[4 * i: 4 * i + 4]
        total = total + 2 * (((bp - bg) ** 2) + ((dp - dg) ** 2)).sum()
        total = total + ((ub - ud) ** 2).sum()
        total = total + ((gb - gd) ** 2).sum()
    return total


def betti_matching_error(pred: np.ndarray, g: np.ndarray, dims: tuple[int, ...] = (0, 1),
                         relative: bool = True) -> float:
    """Number of unmatched bars between a binarised prediction and the mask (the paper's metric).

    ``relative=True`` is what the reference's ``evaluation.py`` reports (its ``evaluation(relative=True)``).
    """
    m = betti_matching(pred.astype(np.float64), g.astype(np.float64), relative)
    return float(sum(len(m[d]["p_un_birth_px"]) + len(m[d]["g_un_birth_px"]) for d in dims))


#: Epochs of Dice alone before the Betti matching term is added (docs/segmentation.md, "Dice warm-up").
WARMUP_EPOCHS = 10


@register_loss
class BettiMatchingLoss(MaskLoss):
    """Soft Dice plus ``alpha`` × the Betti matching loss on sigmoid probabilities (the paper's training loss)."""

    info = LossInfo(
        name="betti-matching",
        family="topology",
        tasks=frozenset({"segmentation"}),
        input="masks",
        params={
            "alpha": Param(0.5, "weight of the Betti matching term", low=0.0),
            "dims": Param("0,1", "homology dimensions", choices=("0", "1", "0,1")),
            "relative": Param(True, "pad P and G with a one-pixel ring at their maximum (relative homology, "
                                    "the paper's default): structures touching the border are not penalised"),
            "warmup": Param(WARMUP_EPOCHS, "epochs of Dice alone before the Betti matching term is added; 0: from "
                                           "the first epoch", low=0),
        },
        citation="Stucki, Paetzold, Shit, Menze & Bauer (2023), Topologically faithful image segmentation via "
                 "induced matching of persistence barcodes, ICML.",
        summary="Dice + alpha * Betti matching (matched bars: birth/death differences; unmatched: persistence).",
        formula="Dice + a*sum_matched 2((b_p-b_g)^2+(d_p-d_g)^2) + a*sum_unmatched (b-d)^2",
        needs=frozenset({"epoch"}),
        version="2",
        caveats="Binary segmentation only; persistence runs on the CPU per image (numba speeds it up). "
                "Needs the epoch in each call while warmup > 0 (Dice alone before it). Version 2: relative "
                "homology and a Dice warm-up by default (version 1 = relative=false, warmup=0).",
    )

    @classmethod
    def needs_for(cls, params: Mapping[str, Any]) -> frozenset[str]:
        # the epoch only decides the warm-up: without one the loss can be called without it
        warmup = params.get("warmup", cls.info.params["warmup"].default)
        return cls.info.needs if warmup != 0 else cls.info.needs - {"epoch"}

    @property
    def first_checkpoint_epoch(self) -> int:
        """The training loop keeps no checkpoint from the warm-up: one would be a Dice-only model."""
        return int(self.warmup)

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        if input.shape[1] > 2:
            raise LossInputError("Loss 'betti-matching' is for binary segmentation; got "
                                 f"{input.shape[1]} channels.", "Use one logit map (B, 1, H, W).")
        p = foreground_prob(input)
        dice = soft_dice_per_image(p, target)
        if self.warmup and int(extras["epoch"]) < self.warmup:
            # early predictions carry hundreds of noise bars whose gradients swamp Dice's; skip the persistence too
            return dice
        dims = tuple(int(d) for d in str(self.dims).split(","))
        bm = torch.stack([betti_matching_cost(p[i], target[i] > 0, dims, self.relative) for i in range(len(p))])
        return dice + self.alpha * bm
