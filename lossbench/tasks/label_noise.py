"""Training-label corruption and long-tailed subsampling, shared by every classification task type.

Both are functions of (labels, seed) only, so every loss trained with the same seed sees the same corrupted
labels and the same subsample (pairing). The tabular and image task types call them from ``prepare``.

* ``inject_label_noise``: the synthetic noise models of the noisy-label literature. ``symmetric``: a chosen row
  gets a label drawn uniformly from the *other* classes (Patrini et al. 2017, CVPR), so ``rate`` is the share of
  wrong labels. ``uniform``: a chosen row gets a label drawn uniformly from *all* classes, the true one included,
  so the share of wrong labels is rate·(K−1)/K (the LDR/ALDR paper's ``uniform_noise``, Zhu et al., ICML 2023,
  ``Optimization-AI/ICML2023_LDR`` ``utils.py``). ``pair`` (a.k.a. asymmetric): class c becomes c + 1 mod K
  (Han et al., Co-teaching, NeurIPS 2018; the LDR code's ``classDep_noise``). ``swap``: fixed class pairs trade
  labels, classes in no pair keep theirs (the LDR code's ``classDep_letter`` / ``classDep_vowel``; the suite
  files ``suites/tabular-noise-*.toml`` list their pairs by class name).
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
NOISE_TYPES = ("symmetric", "uniform", "pair", "swap")
#: Earlier names still accepted in suite files: the tabular task called pair flipping "asymmetric".
OLD_NAMES = {"asymmetric": "pair"}
#: How many rows are corrupted: exactly round(rate·n) of them, or each row independently with probability rate.
COUNTS = ("exact", "per-row")
KEYS = ("type", "rate", "pairs", "val")


@dataclass(frozen=True)
class LabelNoise:
    """``[options] noise = {type = "symmetric", rate = 0.2}`` of a classification task.

    ``pairs``: the class pairs (by class name) that ``swap`` exchanges; ``val``: corrupt the validation labels too.
    """

    type: str = "symmetric"
    rate: float = 0.0
    pairs: tuple[tuple[str, str], ...] = ()
    val: bool = False


def parse_noise(table: Any, fail: Callable[..., Exception], val_default: bool = False) -> LabelNoise:
    """The ``noise`` table of a suite's ``[options]``, validated; ``fail(key, problem, fix)`` names a bad key."""
    if not isinstance(table, Mapping):
        raise fail("noise", f"must be a table; got {table!r}.", 'Write noise = {type = "symmetric", rate = 0.3}.')
    extra = set(table) - set(KEYS)
    if extra:
        raise fail(f"noise.{sorted(extra)[0]}", "unknown key.", f"noise takes {', '.join(KEYS)}.")
    kind = table.get("type", "symmetric")
    if kind not in NOISE_TYPES and kind not in OLD_NAMES:
        raise fail("noise.type", f"must be one of {', '.join(NOISE_TYPES)}; got {kind!r}.",
                   'Write type = "symmetric", for example ("asymmetric" is the earlier name of "pair").')
    rate = table.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise fail("noise.rate", f"must be a number with 0 <= rate < 1; got {rate!r}.", "For example rate = 0.3.")
    pairs = table.get("pairs", [])
    if kind == "swap" and not pairs:
        raise fail("noise.pairs", "swap noise needs the class pairs it exchanges.",
                   'Write pairs = [["B", "D"], ["C", "G"]] (class names of the dataset).')
    if kind != "swap" and pairs:
        raise fail("noise.pairs", f"only swap noise takes pairs; this is {kind!r}.", 'Write type = "swap".')
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise fail("noise.pairs", f"must be a list of two-class lists; got {pairs!r}.", 'For example [["B", "D"]].')
    named = [str(c) for p in pairs for c in p]
    if len(set(named)) != len(named):
        raise fail("noise.pairs", "a class appears in two pairs (or twice in one).", "Give each class one partner.")
    val = table.get("val", val_default)
    if not isinstance(val, bool):
        raise fail("noise.val", f"must be true or false; got {val!r}.", "Write val = true to corrupt validation too.")
    return LabelNoise(OLD_NAMES.get(kind, kind), float(rate), tuple((str(a), str(b)) for a, b in pairs), val)


def swap_table(pairs: tuple[tuple[str, str], ...], classes: Any, uri: str) -> np.ndarray:
    """Class index -> the index its label becomes under ``swap`` noise; pairs naming no class of the data are unused.

    A suite over several datasets lists every dataset's pairs; a pair with one class present is an error (a typo).
    """
    index = {str(c): i for i, c in enumerate(classes)}
    table = np.arange(len(index))
    for a, b in pairs:
        present = [c for c in (a, b) if c in index]
        if len(present) == 1:
            raise ValueError(f"dataset {uri!r}: swap pair ({a!r}, {b!r}) names one class of it, {present[0]!r}; "
                             f"its classes are {', '.join(index)}")
        if present:
            table[index[a]], table[index[b]] = index[b], index[a]
    if np.array_equal(table, np.arange(len(index))):
        raise ValueError(f"dataset {uri!r}: no swap pair names its classes ({', '.join(index)})")
    return table


def inject_label_noise(
    y: np.ndarray, n_classes: int, noise: LabelNoise, seed: int, count: str = "exact",
    swaps: np.ndarray | None = None, split: str = "train",
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, boolean mask of the rows whose label changed); ``y`` itself is not modified.

    ``noise.type``: ``symmetric``, a chosen row gets a label drawn uniformly from the *other* classes; ``uniform``,
    from *all* classes (so about rate·(K−1)/K of the labels change); ``pair``, class c becomes c + 1 mod K, and on
    binary data only positives flip (to 0: under-reported positives, since flipping both ways would be symmetric
    noise); ``swap``, class c becomes ``swaps[c]`` (``swap_table``). ``count``: ``exact`` chooses exactly
    round(rate·n) rows (the image tasks), ``per-row`` each row independently with probability ``rate`` (the tabular
    task and the LDR code). The draws come from the seed's noise stream (keyed by ``split`` beyond training),
    independent of the split and the batch order.
    """
    if noise.type not in NOISE_TYPES:
        raise ValueError(f"unknown noise type {noise.type!r}; use one of {NOISE_TYPES}")
    if not 0 <= noise.rate < 1:
        raise ValueError(f"noise rate must lie in [0, 1); got {noise.rate}")
    if count not in COUNTS:
        raise ValueError(f"unknown noise count {count!r}; use one of {COUNTS}")
    if noise.type == "swap" and (swaps is None or len(swaps) != n_classes):
        raise ValueError("swap noise needs swaps, a class -> class table of length n_classes (swap_table)")
    y = np.asarray(y, dtype=np.int64)
    rng = streams.rng(seed, "noise", *(() if split == "train" else (split,)))
    low = {"symmetric": 1, "uniform": 0}.get(noise.type)  # the new label's draw: an offset, or a class
    if count == "per-row":
        chosen = rng.random(len(y)) < noise.rate
        # drawn for every row, so a row's new label does not depend on which other rows are chosen
        draw = rng.integers(low, n_classes, size=len(y)) if low is not None else None
    else:
        chosen = np.zeros(len(y), dtype=bool)
        n_chosen = round(noise.rate * len(y))
        if n_chosen == 0 or n_classes < 2:
            return y.copy(), chosen
        rows = rng.choice(len(y), size=n_chosen, replace=False)
        chosen[rows] = True
        draw = np.zeros(len(y), dtype=np.int64)
        if low is not None:
            draw[rows] = rng.integers(low, n_classes, size=n_chosen)
    noisy = y.copy()
    if noise.type == "symmetric":
        # an offset in 1..K-1 never maps a label onto itself
        noisy[chosen] = (y[chosen] + draw[chosen]) % n_classes  # type: ignore[index]
    elif noise.type == "uniform":
        noisy[chosen] = draw[chosen]  # type: ignore[index]
    elif noise.type == "swap":
        noisy[chosen] = swaps[y[chosen]]  # type: ignore[index]
    elif n_classes == 2:
        noisy[chosen & (y == 1)] = 0
    else:
        noisy[chosen] = (y[chosen] + 1) % n_classes
    return noisy, noisy != y


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
