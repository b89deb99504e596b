"""Segmentation metrics on binarised predictions (threshold 0.5), averaged over images.

Each metric takes ``(masks, prob)``: integer masks (N, H, W) and foreground probabilities (N, H, W).

Conventions, recorded here because the literature differs:

* Dice and IoU of an empty prediction against an empty mask are 1 (MONAI returns NaN there).
* Betti numbers follow the V-construction of the Betti matching paper: foreground 4-connected,
  background 8-connected; beta_1 counts 8-connected background components that do not touch the
  image border. (8-connected foreground would join 1-px diagonal steps; the convention changes
  Betti numbers on diagonal contacts, so it is fixed here and in the persistence code.)
* ``betti_matching_error`` is relative to the image border, as the Betti matching paper's evaluation
  (``nstucki/Betti-matching`` ``evaluation.py``, ``relative=True``): both masks are padded with a ring of
  foreground, so a structure touching the border is not a separate component and a curve from border
  to border closes a loop. ``betti0_error`` and ``betti1_error`` stay absolute (plain Betti numbers).
* HD95 is the larger of the two directed 95th-percentile boundary distances (as MONAI's
  ``compute_hausdorff_distance(percentile=95)``), in pixels; 0 when both masks are empty and the
  image diagonal when exactly one is.
* clDice uses ``skimage.morphology.skeletonize`` (scikit-image, imported when first used); a
  ratio 0/0 counts as 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from lossbench.metrics.base import register_metric

SEG = frozenset({"segmentation"})
FOUR = ndimage.generate_binary_structure(2, 1)
EIGHT = ndimage.generate_binary_structure(2, 2)


def _per_image(fn: Callable[[np.ndarray, np.ndarray], float], masks: np.ndarray, prob: np.ndarray) -> float:
    g = np.asarray(masks) > 0
    p = np.asarray(prob) > 0.5
    if g.ndim == 2:
        g, p = g[None], p[None]
    return float(np.mean([fn(pi, gi) for pi, gi in zip(p, g, strict=True)]))


def dice_score(p: np.ndarray, g: np.ndarray) -> float:
    tp = np.logical_and(p, g).sum()
    denom = p.sum() + g.sum()
    return 1.0 if denom == 0 else float(2 * tp / denom)


def iou_score(p: np.ndarray, g: np.ndarray) -> float:
    union = np.logical_or(p, g).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, g).sum() / union)


def betti_numbers(m: np.ndarray) -> tuple[int, int]:
    """(beta_0, beta_1) of a binary mask: 4-connected foreground components, enclosed 8-connected holes."""
    b0 = int(ndimage.label(m, FOUR)[1])
    bg = np.pad(~m.astype(bool), 1, constant_values=True)  # the padding joins every border-touching hole
    b1 = int(ndimage.label(bg, EIGHT)[1]) - 1
    return b0, b1


def cldice_score(p: np.ndarray, g: np.ndarray) -> float:
    from skimage.morphology import skeletonize  # lazy: scikit-image is the [seg] extra

    sp, sg = skeletonize(p), skeletonize(g)

    def ratio(a: np.ndarray, skel: np.ndarray) -> float:
        s = skel.sum()
        return 1.0 if s == 0 else float(np.logical_and(a, skel).sum() / s)

    tprec, tsens = ratio(g, sp), ratio(p, sg)  # as Shit et al.: precision of P's skeleton, sensitivity of G's
    return 0.0 if tprec + tsens == 0 else 2 * tprec * tsens / (tprec + tsens)


def _boundary(m: np.ndarray) -> np.ndarray:
    return m & ~ndimage.binary_erosion(m, FOUR, border_value=0)


def hd95_score(p: np.ndarray, g: np.ndarray) -> float:
    if not p.any() and not g.any():
        return 0.0
    if not p.any() or not g.any():
        return float(np.hypot(*p.shape))  # the recorded value for one empty mask: the image diagonal
    bp, bg = _boundary(p), _boundary(g)
    d_to_g = ndimage.distance_transform_edt(~bg)[bp]
    d_to_p = ndimage.distance_transform_edt(~bp)[bg]
    return float(max(np.percentile(d_to_g, 95), np.percentile(d_to_p, 95)))


@register_metric("dice", greater_is_better=True, tasks=SEG, input="masks")
def dice(masks: np.ndarray, prob: np.ndarray) -> float:
    """Dice 2TP/(2TP+FP+FN) per image at threshold 0.5 (empty-empty = 1)."""
    return _per_image(dice_score, masks, prob)


@register_metric("iou", greater_is_better=True, tasks=SEG, input="masks")
def iou(masks: np.ndarray, prob: np.ndarray) -> float:
    """Intersection over union per image at threshold 0.5 (empty-empty = 1)."""
    return _per_image(iou_score, masks, prob)


@register_metric("cldice", greater_is_better=True, tasks=SEG, input="masks")
def cldice(masks: np.ndarray, prob: np.ndarray) -> float:
    """Centreline Dice (Shit et al. 2021) with skimage skeletons."""
    return _per_image(cldice_score, masks, prob)


@register_metric("betti0_error", greater_is_better=False, tasks=SEG, input="masks", bounded=False, limits=(0.0,
                 float("inf")))
def betti0_error(masks: np.ndarray, prob: np.ndarray) -> float:
    """|beta_0(P) - beta_0(G)|: components, 4-connected foreground."""
    return _per_image(lambda p, g: abs(betti_numbers(p)[0] - betti_numbers(g)[0]), masks, prob)


@register_metric("betti1_error", greater_is_better=False, tasks=SEG, input="masks", bounded=False, limits=(0.0,
                 float("inf")))
def betti1_error(masks: np.ndarray, prob: np.ndarray) -> float:
    """|beta_1(P) - beta_1(G)|: holes, 8-connected background."""
    return _per_image(lambda p, g: abs(betti_numbers(p)[1] - betti_numbers(g)[1]), masks, prob)


@register_metric("betti_matching_error", greater_is_better=False, tasks=SEG, input="masks", bounded=False, limits=(0.0,
                 float("inf")))
def betti_matching_error(masks: np.ndarray, prob: np.ndarray) -> float:
    """Unmatched bars in dimensions 0 and 1 after the induced matching, relative to the border (Stucki et al. 2023)."""
    from lossbench.losses.topology import betti_matching_error as bm

    return _per_image(lambda p, g: bm(p, g, relative=True), masks, prob)


@register_metric("hd95", greater_is_better=False, tasks=SEG, input="masks", bounded=False, limits=(0.0, float("inf")))
def hd95(masks: np.ndarray, prob: np.ndarray) -> float:
    """Symmetric 95th-percentile Hausdorff distance of the boundaries, pixels (one mask empty: diagonal)."""
    return _per_image(hd95_score, masks, prob)
