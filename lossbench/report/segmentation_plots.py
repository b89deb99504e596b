"""Example predictions per loss as PNG files: image, mask and one prediction column per loss.

Imported on demand (matplotlib is the [plot] extra); nothing else in lossbench needs it::

    from lossbench.report.segmentation_plots import plot_examples
    plot_examples(images, masks, {"dice": prob_dice, "betti-matching": prob_bm}, "examples.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def plot_examples(
    images: np.ndarray,
    masks: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    path: str | Path,
    titles: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> Path:
    """Write a grid (rows: examples; columns: image, mask, each loss's binarised prediction) to ``path``.

    ``images`` (N, H, W) or (N, 1, H, W); ``masks`` (N, H, W); each prediction (N, H, W) probabilities.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    imgs = np.asarray(images)
    imgs = imgs[:, 0] if imgs.ndim == 4 else imgs
    n = len(imgs)
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(n, cols, figsize=(1.6 * cols, 1.6 * n), squeeze=False)
    for i in range(n):
        panels = [("image", imgs[i], "gray"), ("mask", masks[i], "gray")]
        panels += [(name, np.asarray(p[i]) > threshold, "gray") for name, p in predictions.items()]
        for j, (name, arr, cmap) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(arr, cmap=cmap, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
        if titles is not None:
            axes[i, 0].set_ylabel(titles[i], fontsize=6)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_suite_examples(
    dataset: str, losses: Sequence[str], out_dir: str | Path, *, seed: int = 0, n_examples: int = 4,
    suite: str = "segmentation",
) -> Path:
    """Train one model per loss as the suite would (one seed) and plot test predictions side by side."""
    import torch

    from lossbench.losses import make_loss
    from lossbench.methods import METHODS
    from lossbench.runner import expand
    from lossbench.sources import load_dataset
    from lossbench.suite import load_suite
    from lossbench.tasks import TASK_TYPES
    from lossbench.train import train

    spec_suite = load_suite(suite)
    trials, _ = expand(spec_suite, losses=list(losses), datasets=[dataset], seeds=[seed])
    data = load_dataset(dataset)
    preds: dict[str, np.ndarray] = {}
    test = None
    for spec in trials:
        task = TASK_TYPES.get(spec.task)
        prepared = task.prepare(data, spec)
        torch.manual_seed(spec.seed)
        model = task.build_model(prepared, spec)
        obj = spec.objective
        torch.manual_seed(spec.seed + 1)
        loss = make_loss(obj.loss_name, obj.param_dict if obj.kind == "loss" else {},
                         **prepared.loss_context(spec.seed))
        method = METHODS.get(obj.method_name)(**(obj.param_dict if obj.kind == "method" else {}))
        train(task, model, prepared, loss, method, training=spec.config.get("training", {}), seed=spec.seed,
              primary_metric=spec.primary_metric)
        model = method.finish(model, prepared)
        test = prepared.test
        preds[spec.loss] = task.predict_proba(model, test.X[:n_examples])  # type: ignore[attr-defined]
    assert test is not None
    name = dataset.split("#")[0].replace(":", "-")
    return plot_examples(test.X[:n_examples].numpy(), test.y[:n_examples].numpy(), preds,
                         Path(out_dir) / f"{name}-seed{seed}.png")
