"""2-D binary segmentation of image/mask datasets with a small U-Net.

Splits are seeded by image (the same for every loss given dataset and seed). A dataset with a
target domain (``shift=1``) trains and validates on source images and tests on target images;
the other target images are offered, unlabelled, to adaptation methods in ``info["target_unlabeled"]``.
Multi-rater masks of the training images are in ``info["raters"]`` (N_train, R, H, W).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lossbench.errors import DataError
from lossbench.metrics import METRICS
from lossbench.models import MODELS
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Prepared, TaskType, TensorSplit


def _split(X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> TensorSplit:
    return TensorSplit(torch.as_tensor(X[idx]), torch.as_tensor(y[idx].astype(np.int64)))


class Segmentation(TaskType):
    name = "segmentation"
    description = "2-D binary segmentation (thin structures, blobs, image folders) with a small U-Net"
    loss_tasks = frozenset({"segmentation"})

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        X, y = getattr(data, "X", None), getattr(data, "y", None)
        if not isinstance(X, np.ndarray) or X.ndim != 4:
            raise DataError(f"Dataset {data.uri!r} is not an image dataset.", "Use a seg: or folder: dataset URI.")
        split = spec.config.get("split", {})
        test, val = float(split.get("test", 0.2)), float(split.get("val", 0.2))
        n = len(y)
        order = np.random.default_rng(spec.seed).permutation(n)
        target_X, target_y = getattr(data, "target_X", None), getattr(data, "target_y", None)
        info: dict[str, Any] = {}
        if target_X is not None:
            # source: train + val; target: a labelled test part and an unlabelled adaptation part
            n_val = max(1, round(val * n))
            val_idx, train_idx = order[:n_val], order[n_val:]
            t_order = np.random.default_rng(spec.seed + 1).permutation(len(target_y))
            n_test = max(1, round(test * len(target_y)))
            test_part = _split(target_X, target_y, t_order[:n_test])
            info["target_unlabeled"] = torch.as_tensor(target_X[t_order[n_test:]])
        else:
            n_test, n_val = max(1, round(test * n)), round(val * n)
            test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
            test_part = _split(X, y, test_idx)
        if len(train_idx) < 2:
            raise DataError(f"Dataset {data.uri!r} leaves {len(train_idx)} training image(s).", "Use more images (n=).")
        raters = getattr(data, "raters", None)
        if raters is not None:
            info["raters"] = torch.as_tensor(raters[train_idx].astype(np.int64))
        train = _split(X, y, train_idx)
        fg = int(y[train_idx].sum())
        info.update(n_train=len(train_idx), n_val=len(val_idx), n_test=len(test_part))
        return Prepared(
            train=train,
            val=_split(X, y, val_idx) if len(val_idx) else None,
            test=test_part,
            n_features=int(np.prod(X.shape[1:])),
            n_classes=2,
            kind="segmentation",
            class_counts=[int(y[train_idx].size) - fg, fg],
            info=info,
        )

    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        options = {k: v for k, v in spec.config.get("model", {}).items() if k != "family"}
        family = spec.config.get("model", {}).get("family", "unet")
        return MODELS.get(family)(prepared.n_features, prepared.n_classes, **options)

    @torch.no_grad()
    def predict_proba(self, model: nn.Module, X: torch.Tensor, batch: int = 64) -> np.ndarray:
        """Foreground probabilities (N, H, W)."""
        was_training = model.training
        model.eval()
        outs = []
        for i in range(0, len(X), batch):
            z = model(X[i: i + batch]).float()
            outs.append(torch.sigmoid(z[:, 0]) if z.shape[1] == 1 else torch.softmax(z, 1)[:, 1])
        model.train(was_training)
        return torch.cat(outs).cpu().numpy().astype(np.float64)

    def evaluate(
        self, model: nn.Module, prepared: Prepared, split: str, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        part = prepared.split(split)
        proba = self.predict_proba(model, part.X)
        y = part.y.cpu().numpy()
        return {m: METRICS.get(m)(y, proba) for m in metrics}


TASK_TYPES.register("segmentation", Segmentation(), description=Segmentation.description)
