"""Example predictions per loss: image, mask and one binarised prediction column per loss.

Imported on demand (matplotlib is the [plots] extra); nothing else in lossbench needs it.
:func:`example_grids` draws what a run stored (``RESULTS/examples/<trial_id>.npz``, written for every ok
segmentation trial) and is what ``lossbench compare --plots`` and the HTML report use::

    from lossbench.report.segmentation_plots import plot_examples
    plot_examples(images, masks, {"dice": prob_dice, "betti-matching": prob_bm}, "examples.png")
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.report.plots import FORMATS, pyplot, save
from lossbench.store import read_examples

#: Probability above which a pixel is foreground: the threshold every segmentation metric uses.
THRESHOLD = 0.5


def _show_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image as imshow wants it: (H, W) grey, or (H, W, 3) RGB scaled to [0, 1]."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr), None
    return (arr[0] if arr.ndim == 3 else arr), "gray"


def example_figure(
    images: np.ndarray,
    masks: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    titles: Sequence[str] | None = None,
    threshold: float = THRESHOLD,
    title: str = "",
) -> Any:
    """A matplotlib figure: rows = examples; columns = image, mask, each loss's binarised prediction.

    ``images`` (N, H, W) or (N, C, H, W); ``masks`` (N, H, W); each prediction (N, H, W) probabilities.
    """
    plt = pyplot()
    imgs = np.asarray(images)
    n = len(imgs)
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n + (0.3 if title else 0)), squeeze=False)
    for i in range(n):
        shown, cmap = _show_image(imgs[i])
        panels: list[tuple[str, np.ndarray, str | None, bool]] = [
            ("image", shown, cmap, False), ("mask", np.asarray(masks[i]) > 0, "gray", True)]
        panels += [(name, np.asarray(p[i], dtype=np.float32) > threshold, "gray", True)
                   for name, p in predictions.items()]
        for j, (name, arr, cm, binary) in enumerate(panels):
            ax = axes[i, j]
            # fixed 0..1 range for masks: an all-foreground prediction must show white, not black
            ax.imshow(arr, cmap=cm, interpolation="nearest", **({"vmin": 0, "vmax": 1} if binary else {}))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
        if titles is not None:
            axes[i, 0].set_ylabel(titles[i], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


def plot_examples(
    images: np.ndarray,
    masks: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    path: str | Path,
    titles: Sequence[str] | None = None,
    threshold: float = THRESHOLD,
) -> Path:
    """Write the :func:`example_figure` grid to ``path`` (one PNG)."""
    plt = pyplot()
    fig = example_figure(images, masks, predictions, titles, threshold)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return out


def pick_seed(losses_per_seed: Mapping[int, set[str]], losses: Sequence[str]) -> int:
    """The lowest seed every loss has examples for; else the seed with the most losses (lowest on ties)."""
    complete = [s for s, have in losses_per_seed.items() if set(losses) <= have]
    if complete:
        return min(complete)
    return min(losses_per_seed, key=lambda s: (-len(losses_per_seed[s]), s))


def _stem(dataset: str, taken: set[str]) -> str:
    base = "examples-" + (re.sub(r"[^0-9A-Za-z]+", "-", dataset).strip("-") or "dataset")
    stem, k = base, 2
    while stem in taken:  # two URIs that differ only in punctuation
        stem, k = f"{base}-{k}", k + 1
    taken.add(stem)
    return stem


def example_grids(
    trials: pd.DataFrame,
    examples: Mapping[str, Path],
    folder: str | Path,
    losses: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> dict[str, list[Path]]:
    """One grid per dataset from stored examples: {``examples-<dataset>``: [png, svg]}; empty when none are stored.

    ``examples`` maps trial_id → examples file (:func:`lossbench.results.load_examples`). Only ok trials count;
    columns follow ``losses``; one seed per dataset (:func:`pick_seed`), so every column shows the same images.
    """
    needed = {"trial_id", "status", "dataset", "loss", "seed"}
    if not examples or trials.empty or not needed <= set(trials.columns):
        return {}
    ok = trials[(trials["status"] == "ok") & trials["trial_id"].isin(list(examples))]
    if losses is not None:
        ok = ok[ok["loss"].isin(list(losses))]
    if datasets is not None:
        ok = ok[ok["dataset"].isin(list(datasets))]
    out: dict[str, list[Path]] = {}
    taken: set[str] = set()
    for dataset in sorted(ok["dataset"].unique()):
        sub = ok[ok["dataset"] == dataset]
        present = set(sub["loss"])
        order = [x for x in (losses or sorted(present)) if x in present]
        per_seed = {int(s): set(g["loss"]) for s, g in sub.groupby("seed")}
        seed = pick_seed(per_seed, order)
        chosen = sub[sub["seed"] == seed].drop_duplicates("loss", keep="last").set_index("loss")
        reference: dict[str, np.ndarray] | None = None
        predictions: dict[str, np.ndarray] = {}
        for loss in order:
            if loss not in chosen.index:
                continue
            arrays = read_examples(examples[str(chosen.loc[loss, "trial_id"])])
            if reference is None:
                reference = arrays
            elif not np.array_equal(arrays["index"], reference["index"]):
                continue  # other test images (another split configuration): not comparable side by side
            predictions[loss] = arrays["proba"]
        if reference is None:
            continue
        fig = example_figure(reference["image"], reference["mask"], predictions,
                             titles=[f"test #{i}" for i in reference["index"]],
                             title=f"{dataset} · seed {seed} · prediction > {THRESHOLD:g}")
        stem = _stem(str(dataset), taken)
        out[stem] = save(fig, Path(folder) / stem, formats)
    return out
