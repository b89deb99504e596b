"""2-D binary segmentation of image/mask datasets with a small U-Net.

Splits are seeded by image (the same for every loss given dataset and seed). A dataset with a
target domain (``shift=1``) trains and validates on source images and tests on target images;
the other target images are offered, unlabelled, to adaptation methods in ``info["target_unlabeled"]``.
Multi-rater masks of the training images are in ``info["raters"]`` (N_train, R, H, W).

After the test evaluation a trial keeps its first ``[options] examples`` test images (default 4) with their
masks and predicted foreground probabilities; the report draws them side by side per loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lossbench import streams
from lossbench.errors import DataError
from lossbench.evaluation import Predictions
from lossbench.models import MODELS
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TaskType, TensorSplit

MAX_EXAMPLES = 32


@dataclass(frozen=True)
class SegmentationOptions:
    examples: int = 4  # test images a trial keeps for the report's example plots; 0 keeps none


def _split(X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> TensorSplit:
    return TensorSplit(torch.as_tensor(X[idx]), torch.as_tensor(y[idx].astype(np.int64)))


class Segmentation(TaskType):
    name = "segmentation"
    description = "2-D binary segmentation (thin structures, blobs, image folders) with a small U-Net"
    loss_tasks = frozenset({"segmentation"})
    predictions = frozenset({"masks"})
    default_model = "unet"

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> SegmentationOptions:
        """``[options]``: ``examples = N`` test images kept per trial for the report (0 to 32, default 4)."""
        for key in table:
            if key != "examples":
                raise fail(key, "unknown option.", "Options: examples.")
        n = table.get("examples", SegmentationOptions.examples)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_EXAMPLES:
            raise fail("examples", f"must be an integer from 0 to {MAX_EXAMPLES}; got {n!r}.", "Example: examples = 4")
        return SegmentationOptions(n)

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        X, y = getattr(data, "X", None), getattr(data, "y", None)
        if not isinstance(X, np.ndarray) or X.ndim != 4:
            raise DataError(f"Dataset {data.uri!r} is not an image dataset.", "Use a seg: or folder: dataset URI.")
        test, val = spec.config.split.test, spec.config.split.val
        n = len(y)
        order = streams.rng(spec.seed, "split", "order").permutation(n)
        target_X, target_y = getattr(data, "target_X", None), getattr(data, "target_y", None)
        info: dict[str, Any] = {}
        if target_X is not None:
            # source: train + val; target: a labelled test part and an unlabelled adaptation part
            n_val = max(1, round(val * n))
            val_idx, train_idx = order[:n_val], order[n_val:]
            t_order = streams.rng(spec.seed, "split", "target").permutation(len(target_y))
            n_test = max(1, round(test * len(target_y)))
            test_idx = t_order[:n_test]  # indices into the target images
            test_part = _split(target_X, target_y, test_idx)
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
        # Which images the test split holds: depends on (dataset, seed, split) only, so every loss's examples match.
        info["test_index"] = np.asarray(test_idx, dtype=np.int64)
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
        model = spec.config.model
        return MODELS.get(model.family)(prepared.n_features, prepared.n_classes, **model.options)

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

    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        part = prepared.split(split)
        return {"masks": (part.y.cpu().numpy(), self.predict_proba(model, part.X))}

    def examples(self, model: nn.Module, prepared: Prepared, spec: TrialSpec) -> dict[str, np.ndarray] | None:
        """The first N test images: image (float16), mask (uint8), foreground probability (float16), index."""
        n = min(spec.config.options.examples, len(prepared.test))
        if n <= 0:
            return None
        X, y = prepared.test.X[:n], prepared.test.y[:n]
        return {
            "image": X.detach().cpu().float().numpy().astype(np.float16),
            "mask": y.cpu().numpy().astype(np.uint8),
            "proba": self.predict_proba(model, X).astype(np.float16),
            # a Prepared built elsewhere may lack the dataset indices: positions in the test split then
            "index": np.asarray(prepared.info.get("test_index", np.arange(n))[:n], dtype=np.int64),
        }


TASK_TYPES.register("segmentation", Segmentation(), description=Segmentation.description)
