"""Training-label corruption and long-tailed subsampling, shared by every classification task type.

Both are functions of (labels, seed) only, so every loss trained with the same seed sees the same corrupted
labels and the same subsample (pairing). The tabular and image task types call them from ``prepare``.

* ``inject_label_noise``: the synthetic noise models of the noisy-label literature. ``symmetric``: a chosen row
  gets a label drawn uniformly from the *other* classes (Patrini et al. 2017, CVPR; the "uniform" variant that may
  keep the true label is not used, so ``rate`` is the real share of wrong labels). ``pair`` (a.k.a. asymmetric):
  class c becomes c + 1 mod K (Han et al., Co-teaching, NeurIPS 2018).
* ``long_tail_counts`` / ``long_tail_indices``: the CIFAR-LT profile of Cao et al., LDAM-DRW, NeurIPS 2019
  (reference code ``kaidic/LDAM-DRW`` ``imbalance_cifar.py``, ``get_img_num_per_cls``):
  n_i = int(n_max · IF^(−i/(K−1))), class 0 the head and class K−1 the tail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbench import streams

#: What a corrupted label becomes (see ``inject_label_noise``).
NOISE_TYPES = ("symmetric", "pair")
#: Earlier names still accepted in suite files: the tabular task called pair flipping "asymmetric".
OLD_NAMES = {"asymmetric": "pair"}
#: How many rows are corrupted: exactly round(rate·n) of them, or each row independently with probability rate.
COUNTS = ("exact", "per-row")


@dataclass(frozen=True)
class LabelNoise:
    """``[options] noise = {type = "symmetric" | "pair", rate = 0.2}`` of a classification task."""

    type: str = "symmetric"
    rate: float = 0.0


def parse_noise(table: Any, fail: Callable[..., Exception]) -> LabelNoise:
    """The ``noise`` table of a suite's ``[options]``, validated; ``fail(key, problem, fix)`` names a bad key."""
    if not isinstance(table, Mapping):
        raise fail("noise", f"must be a table; got {table!r}.", 'Write noise = {type = "symmetric", rate = 0.3}.')
    extra = set(table) - {"type", "rate"}
    if extra:
        raise fail(f"noise.{sorted(extra)[0]}", "unknown key.", "noise takes type and rate.")
    kind = table.get("type", "symmetric")
    if kind not in NOISE_TYPES and kind not in OLD_NAMES:
        raise fail("noise.type", f"must be one of {', '.join(NOISE_TYPES)}; got {kind!r}.",
                   'Write type = "symmetric" or type = "pair" ("asymmetric" is the earlier name of "pair").')
    rate = table.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise fail("noise.rate", f"must be a number with 0 <= rate < 1; got {rate!r}.", "For example rate = 0.3.")
    return LabelNoise(OLD_NAMES.get(kind, kind), float(rate))


def inject_label_noise(
    y: np.ndarray, n_classes: int, noise: LabelNoise, seed: int, count: str = "exact"
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, boolean mask of the corrupted rows); ``y`` itself is not modified.

    ``noise.type``: ``symmetric``, a corrupted row gets a label drawn uniformly from the *other* classes;
    ``pair``, class c becomes c + 1 mod K, and on binary data only positives flip (to 0: under-reported positives,
    since flipping both ways would be symmetric noise). ``count``: ``exact`` corrupts exactly round(rate·n) rows
    (the image tasks), ``per-row`` each row independently with probability ``rate`` (the tabular task).
    The draws come from the seed's noise stream, independent of the split and the batch order.
    """
    if noise.type not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {noise.type!r}; use one of {NOISE_TYPES}")
    if not 0 <= noise.rate < 1:
        raise ValueError(f"noise rate must lie in [0, 1); got {noise.rate}")
    if count not in COUNTS:
        raise ValueError(f"unknown noise count {count!r}; use one of {COUNTS}")
    y = np.asarray(y, dtype=np.int64)
    if count == "per-row":
        rng = streams.rng(seed, "noise")
        flip = rng.random(len(y)) < noise.rate
        # drawn for every row, so a row's new label does not depend on which other rows flip
        offset = rng.integers(1, n_classes, size=len(y)) if noise.type == "symmetric" else None
    else:
        flip = np.zeros(len(y), dtype=bool)
        n_flip = round(noise.rate * len(y))
        if n_flip == 0 or n_classes < 2:
            return y.copy(), flip
        rng = streams.rng(seed, "noise")
        rows = rng.choice(len(y), size=n_flip, replace=False)
        flip[rows] = True
        offset = np.zeros(len(y), dtype=np.int64)
        if noise.type == "symmetric":
            offset[rows] = rng.integers(1, n_classes, size=n_flip)
    noisy = y.copy()
    if noise.type == "symmetric":
        # an offset in 1..K-1 never maps a label onto itself
        noisy[flip] = (y[flip] + offset[flip]) % n_classes  # type: ignore[index]
    elif n_classes == 2:
        flip &= y == 1
        noisy[flip] = 0
    else:
        noisy[flip] = (y[flip] + 1) % n_classes
    return noisy, flip


def long_tail_counts(n_max: int, n_classes: int, imbalance: float) -> list[int]:
    """Per-class counts of the exponential profile; ``imbalance`` = n_0 / n_{K−1} (≥ 1); at least 1 per class."""
    if imbalance < 1:
        raise ValueError(f"imbalance factor must be at least 1; got {imbalance}")
    if n_classes < 2:
        return [int(n_max)] * n_classes
    return [max(1, int(n_max * imbalance ** (-i / (n_classes - 1)))) for i in range(n_classes)]


def long_tail_indices(y: np.ndarray, n_classes: int, imbalance: float, seed: int) -> np.ndarray:
    """Sorted row indices of a long-tailed subsample of ``y``.

    n_max is the *smallest* class count in ``y``: CIFAR's classes are equal, and on nearly balanced data
    (digits: 104-109 training rows per class) this lets every class meet its target, so the realised counts
    follow the profile exactly.
    """
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes)
    present = counts[counts > 0]
    targets = long_tail_counts(int(present.min()) if len(present) else 0, n_classes, imbalance)
    rng = streams.rng(seed, "long_tail")
    keep = []
    for c in range(n_classes):
        rows = np.flatnonzero(y == c)
        keep.append(rng.permutation(rows)[: targets[c]])
    return np.sort(np.concatenate(keep))
