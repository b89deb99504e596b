"""Training-label corruption and long-tailed subsampling, shared by every classification task type.

Both are functions of (labels, seed) only, so every loss trained with the same seed sees the same corrupted
labels and the same subsample (pairing). The tabular and image task types call them from ``prepare``.

* ``inject_label_noise``: the synthetic noise models of the noisy-label literature. ``symmetric``: a chosen row
  gets a label drawn uniformly from the *other* classes (Patrini et al. 2017, CVPR; the "uniform" variant that may
  keep the true label is not used, so ``rate`` is the real share of wrong labels). ``pair`` (a.k.a. asymmetric):
  class c becomes c + 1 mod K (Han et al., Co-teaching, NeurIPS 2018). Exactly ``round(rate·n)`` rows are flipped.
* ``long_tail_counts`` / ``long_tail_indices``: the CIFAR-LT profile of Cao et al., LDAM-DRW, NeurIPS 2019
  (reference code ``kaidic/LDAM-DRW`` ``imbalance_cifar.py``, ``get_img_num_per_cls``):
  n_i = int(n_max · IF^(−i/(K−1))), class 0 the head and class K−1 the tail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

NOISE_TYPES = ("symmetric", "pair")


def check_noise(noise: Any) -> str:
    """An empty string when ``noise`` is a valid ``{type, rate}`` table, else what is wrong with it."""
    if not isinstance(noise, Mapping):
        return "must be a table such as {type = \"symmetric\", rate = 0.2}."
    unknown = set(noise) - {"type", "rate"}
    if unknown:
        return f"unknown key {sorted(unknown)[0]!r}; noise takes type and rate."
    if noise.get("type", "symmetric") not in NOISE_TYPES:
        return f"type must be one of {', '.join(NOISE_TYPES)}; got {noise.get('type')!r}."
    rate = noise.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        return f"rate must be a number in [0, 1); got {rate!r}."
    return ""


def inject_label_noise(
    y: np.ndarray, n_classes: int, rate: float, seed: int, kind: str = "symmetric"
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, boolean mask of the flipped rows); ``y`` itself is not modified."""
    if kind not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; use one of {NOISE_TYPES}")
    if not 0 <= rate < 1:
        raise ValueError(f"noise rate must lie in [0, 1); got {rate}")
    y = np.asarray(y, dtype=np.int64)
    noisy = y.copy()
    flipped = np.zeros(len(y), dtype=bool)
    n_flip = round(rate * len(y))
    if n_flip == 0 or n_classes < 2:
        return noisy, flipped
    rng = np.random.default_rng([seed, 0x4E015E])  # its own stream: independent of split and batch order
    rows = rng.choice(len(y), size=n_flip, replace=False)
    if kind == "pair":
        noisy[rows] = (y[rows] + 1) % n_classes
    else:
        # an offset in 1..K-1 never maps a label onto itself
        noisy[rows] = (y[rows] + rng.integers(1, n_classes, size=n_flip)) % n_classes
    flipped[rows] = True
    return noisy, flipped


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
    rng = np.random.default_rng([seed, 0x10A6])
    keep = []
    for c in range(n_classes):
        rows = np.flatnonzero(y == c)
        keep.append(rng.permutation(rows)[: targets[c]])
    return np.sort(np.concatenate(keep))
