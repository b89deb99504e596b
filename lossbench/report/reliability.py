"""Reliability diagrams: accuracy against top-class confidence in equal-width bins, one PNG per loss.

Same binning as the ``ece`` metric (15 equal-width bins of the max-softmax confidence, Guo et al., ICML 2017,
"On Calibration of Modern Neural Networks"), so the gaps drawn add up to the reported ECE.
matplotlib is imported only when a figure is drawn (it is an optional dependency).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossbench.metrics.classification import ece


def reliability_bins(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """One row per bin: lower/upper edge, count, mean confidence and accuracy (NaN for empty bins)."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y)).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = bins == b
        rows.append({
            "lo": b / n_bins, "hi": (b + 1) / n_bins, "count": int(mask.sum()),
            "confidence": float(conf[mask].mean()) if mask.any() else float("nan"),
            "accuracy": float(correct[mask].mean()) if mask.any() else float("nan"),
        })
    return pd.DataFrame(rows)


def reliability_diagram(y: np.ndarray, proba: np.ndarray, ax: Any = None, title: str = "", n_bins: int = 15) -> Any:
    """Draw one diagram on ``ax`` (a new figure when None); returns the axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.6))
    table = reliability_bins(y, proba, n_bins)
    width = 1.0 / n_bins
    filled = table[table["count"] > 0]
    ax.bar(filled["lo"], filled["accuracy"], width=width, align="edge", color="#4C72B0", edgecolor="white",
           label="accuracy")
    # the gap spans accuracy → confidence: above the bar when over-confident, inside it when under-confident
    ax.bar(filled["lo"], filled["confidence"] - filled["accuracy"], bottom=filled["accuracy"], width=width,
           align="edge", facecolor="none", edgecolor="#C44E52", hatch="///", linewidth=0.8,
           label="gap to confidence")
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    ax.set_title(f"{title}  ECE {ece(np.asarray(y), proba, n_bins):.3f}".strip(), fontsize=9)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return ax


def save_reliability_diagrams(predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], out_dir: str | Path,
                              prefix: str = "reliability", n_bins: int = 15) -> list[Path]:
    """One PNG per loss from ``{loss: (y, proba)}``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for loss, (y, proba) in predictions.items():
        fig, ax = plt.subplots(figsize=(3.6, 3.6))
        reliability_diagram(y, proba, ax=ax, title=loss, n_bins=n_bins)
        fig.tight_layout()
        path = out / f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', loss)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
