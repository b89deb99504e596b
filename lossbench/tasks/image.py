"""Image classification (``image``) and one-class detection (``one-class``) with a small CNN.

Data come as flattened pixels with ``meta["shape"]`` (see ``lossbench/sources/images.py``); a table without a
shape is treated as a 1-D signal, so both task types also run on tabular data. Per trial, from the trial seed:

* splits: the dataset's official train/test split when it has one (``meta["n_train"]``), else stratified
  train/val/test as in the tabular task; the validation rows are carved out of the training rows;
* long tail (``imbalance=`` on the URI or ``[options] imbalance``): the training split is subsampled to the
  CIFAR-LT profile; validation and test stay balanced;
* label noise (``[options] noise = {type, rate}``): training and validation labels are corrupted (a validation
  split carved from noisy training data is noisy too); test labels stay clean;
* per-channel standardisation fitted on the training rows;
* augmentation (``[options] augment = {crop = <pad>, flip = <bool>}``): random crop after zero padding and
  horizontal flip (only where ``meta["hflip"]`` says mirrored images keep their class), drawn per row from
  (seed, epoch, row index): every loss and method sees the same augmented images.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from lossbench import streams
from lossbench.errors import DataError
from lossbench.evaluation import Predictions
from lossbench.models import MODELS
from lossbench.models.cnn import split_features
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TaskType
from lossbench.tasks.classification import split_indices, split_seed, to_split
from lossbench.tasks.label_noise import LabelNoise, inject_label_noise, long_tail_indices, parse_noise

OPTION_KEYS = ("augment", "noise", "imbalance")


def augment_draws(n_rows: int, seed: int, epoch: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(crop offsets (n, 2), flip bits (n,)) of every training row in one epoch."""
    key = (n_rows, seed, epoch, crop)
    if _DRAWS.get("key") != key:  # one epoch's draws, reused by all its batches
        g = streams.generator(seed, "augment", epoch)
        offsets = torch.randint(0, 2 * crop + 1, (n_rows, 2), generator=g)
        flips = torch.rand(n_rows, generator=g) < 0.5
        _DRAWS.update(key=key, value=(offsets, flips))
    return _DRAWS["value"]


_DRAWS: dict[str, Any] = {}


def augment_batch(x: torch.Tensor, index: torch.Tensor, seed: int, epoch: int, crop: int, flip: bool,
                  n_rows: int) -> torch.Tensor:
    """Random crop (zero padding ``crop`` px) and horizontal flip of images (B, C, H, W), per row.

    The draws for row i in an epoch come from a generator seeded by (seed, epoch) and indexed by i, so they
    do not depend on the batch composition, the method or how often the model is called.
    """
    if x.ndim != 4 or (crop <= 0 and not flip):
        return x
    all_offsets, all_flips = augment_draws(n_rows, seed, epoch, crop)
    index = index.cpu()
    offsets, flips = all_offsets[index], all_flips[index]
    out = x
    if crop > 0:
        b, _, h, w = x.shape
        padded = nn.functional.pad(x, (crop, crop, crop, crop))
        rows = (offsets[:, 0, None] + torch.arange(h)).to(x.device)  # (B, H)
        cols = (offsets[:, 1, None] + torch.arange(w)).to(x.device)  # (B, W)
        bi = torch.arange(b, device=x.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = flips.to(x.device)
        out = torch.where(mask[:, None, None, None], out.flip(-1), out)
    return out.contiguous()


@dataclass(frozen=True)
class Augment:
    crop: int = 0  # zero padding in px before a random crop of the original size; 0: none
    flip: bool = False  # random horizontal flips, where the dataset says mirrored images keep their class


@dataclass(frozen=True)
class ImageOptions:
    augment: Augment = field(default_factory=Augment)
    noise: LabelNoise | None = None  # training and validation labels
    imbalance: float = 1.0  # long tail: n_head / n_tail of the training split (a URI's imbalance= wins)


def parse_image_options(table: Mapping[str, Any], fail: Fail) -> ImageOptions:
    for key in table:
        if key not in OPTION_KEYS:
            raise fail(key, "unknown option.", f"Options: {', '.join(OPTION_KEYS)}.")
    aug = table.get("augment", {})
    if not isinstance(aug, Mapping) or set(aug) - {"crop", "flip"}:
        raise fail("augment", "must be a table with crop (padding in px) and flip (bool).",
                   "Example: augment = {crop = 1, flip = false}")
    crop, flip = aug.get("crop", 0), aug.get("flip", False)
    if isinstance(crop, bool) or not isinstance(crop, int) or crop < 0 or not isinstance(flip, bool):
        raise fail("augment", "crop must be an integer >= 0 and flip a bool.")
    noise = parse_noise(table["noise"], fail, val_default=True) if "noise" in table else None
    if noise is not None and (noise.type == "swap" or not noise.val):
        key, problem = ("type", "swap noise is tabular-only") if noise.type == "swap" else \
            ("val", "the image task always corrupts validation labels too")
        raise fail(f"noise.{key}", f"{problem}.", "Use symmetric, uniform or pair noise, without val.")
    imb = table.get("imbalance", 1)
    if isinstance(imb, bool) or not isinstance(imb, (int, float)) or imb < 1:
        raise fail("imbalance", f"must be a number >= 1 (n_head / n_tail); got {imb!r}.")
    return ImageOptions(Augment(crop, flip), noise, float(imb))


class ImageClassification(TaskType):
    name = "image"
    description = "Image (or 1-D signal) classification with a small CNN; long-tail, label-noise, augmentation"
    loss_tasks = frozenset({"binary", "multiclass"})
    predictions = frozenset({"proba", "features"})
    default_model = "cnn"

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> ImageOptions:
        return parse_image_options(table, fail)

    # -- data ----------------------------------------------------------------------------------------------------
    def split(self, data: Dataset, spec: TrialSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        test, val = spec.config.split.test, spec.config.split.val
        n_train = data.meta.get("n_train")
        if n_train is None:
            return split_indices(data.y, spec.seed, test, val, data.uri)
        rest, test_idx = np.arange(n_train), np.arange(n_train, len(data.y))
        if val <= 0:
            return rest, np.array([], dtype=np.int64), test_idx
        # the official test set stays whole; validation comes out of the official training rows
        train_idx, val_idx = train_test_split(rest, test_size=val, stratify=data.y[rest],
                                              random_state=split_seed(spec.seed, "val"))
        return train_idx, val_idx, test_idx

    def images(self, data: Dataset) -> np.ndarray:
        shape = data.meta.get("shape") or [data.X.shape[1]]
        try:
            X = data.X.to_numpy(dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"Dataset {data.uri!r} has non-numeric columns; the image task needs numbers.",
                            "Use the classification task for mixed tables.") from None
        return X.reshape(len(X), *shape)

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        options: ImageOptions = spec.config.options
        k = data.n_classes
        X = self.images(data)
        y = data.y.copy()
        train_idx, val_idx, test_idx = self.split(data, spec)
        imbalance = float(data.meta.get("imbalance", options.imbalance))
        if imbalance > 1:
            train_idx = train_idx[long_tail_indices(y[train_idx], k, imbalance, spec.seed)]
        info: dict[str, Any] = {}
        noise = options.noise
        if noise is not None and noise.rate > 0:
            noisy_rows = np.concatenate([train_idx, val_idx])
            y[noisy_rows], flipped = inject_label_noise(y[noisy_rows], k, noise, spec.seed)
            info["n_noisy"] = int(flipped.sum())
        train_idx, val_idx, test_idx = self.restrict(y, train_idx, val_idx, test_idx)
        # per-channel statistics of the training rows only (1-D signals: one mean and std)
        axes = (0, *range(2, X.ndim)) if X.ndim > 2 else (0, 1)
        mean = X[train_idx].mean(axis=axes, keepdims=True)
        std = X[train_idx].std(axis=axes, keepdims=True) + 1e-6
        Xn = (X - mean) / std
        parts = {name: to_split(Xn[i], y[i]) for name, i in
                 (("train", train_idx), ("val", val_idx), ("test", test_idx)) if len(i)}
        # mirrored images keep their class only where the dataset says so
        aug = replace(options.augment, flip=options.augment.flip and bool(data.meta.get("hflip", False)))
        info.update(n_train=len(train_idx), n_val=len(val_idx), n_test=len(test_idx), shape=list(X.shape[1:]),
                    augment=aug)
        return Prepared(
            train=parts["train"],
            val=parts.get("val"),
            test=parts["test"],
            n_features=int(np.prod(X.shape[1:])),
            n_classes=k,
            kind=self.kind(k),
            class_counts=np.bincount(y[train_idx], minlength=k).tolist(),
            info=info,
        )

    def kind(self, k: int) -> str:
        return "binary" if k == 2 else "multiclass"

    def restrict(self, y: np.ndarray, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, ...]:
        return train, val, test

    def augment(self, prepared: Prepared, x: torch.Tensor, index: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
        aug = prepared.info.get("augment", Augment())
        return augment_batch(x, index, seed, epoch, aug.crop, aug.flip, len(prepared.train))

    # -- model and evaluation ------------------------------------------------------------------------------------
    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        family, options = spec.config.model.family, spec.config.model.options
        shape = prepared.info.get("shape", [prepared.n_features])
        if family == "cnn":
            return MODELS.get("cnn")(shape, prepared.n_classes, **options)
        # any other family takes flat inputs
        inner = MODELS.get(family)(prepared.n_features, prepared.n_classes, **options)
        layers = list(inner) if isinstance(inner, nn.Sequential) else [inner]
        return nn.Sequential(nn.Flatten(), *layers)

    @torch.no_grad()
    def outputs(self, model: nn.Module, X: torch.Tensor, want_features: bool, batch: int = 2048
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """(softmax probabilities, penultimate features or None)."""
        was_training = model.training
        model.eval()
        parts = split_features(model) if want_features else None
        probs, feats = [], []
        for i in range(0, len(X), batch):
            xb = X[i : i + batch]
            if parts is not None:
                h = parts[0](xb)
                feats.append(h.float().cpu())
                logits = parts[1](h)
            else:
                logits = model(xb)
            probs.append(torch.softmax(logits.float(), dim=1).cpu())
        model.train(was_training)
        proba = torch.cat(probs).numpy().astype(np.float64)
        return proba, (torch.cat(feats).numpy() if feats else None)

    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        part = prepared.split(split)
        proba, feats = self.outputs(model, part.X, "features" in kinds)
        y = part.y.cpu().numpy()
        out: dict[str, tuple[Any, ...]] = {"proba": (y, proba)}
        if feats is not None:  # a model without a feature/head split (NoProp, Hyp-OC) has none
            out["features"] = (y, feats)
        return out


class OneClassDetection(ImageClassification):
    """Train on the real class (class 1) only; validate and test on both classes (detection: AUROC, EER).

    Needs binary data (``positive=`` makes a one-vs-rest view). The model keeps two outputs; the score of a
    sample is its class-1 probability. The one-class objective comes from the method (``hyp-pc``, ``hyp-ce``);
    a plain loss sees a single label and is only a floor.
    """

    name = "one-class"
    description = "One-class detection: train on the real class only, evaluate AUROC / EER on real vs other"
    loss_tasks = frozenset({"one-class", "binary"})

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        if data.n_classes != 2:
            raise DataError(f"The one-class task needs binary data; {data.uri!r} has {data.n_classes} classes.",
                            "Add positive=<class> to the URI for a one-vs-rest view (class 1 is the real class).")
        return super().prepare(data, spec)

    def kind(self, k: int) -> str:
        return "one-class"

    def restrict(self, y: np.ndarray, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, ...]:
        return train[y[train] == 1], val, test

    def supports(self, loss_tasks: frozenset[str], prepared: Prepared) -> tuple[bool, str]:
        if loss_tasks & self.loss_tasks:
            return True, ""
        return False, f"declared for {', '.join(sorted(loss_tasks))}, not one-class detection"


TASK_TYPES.register("image", ImageClassification(), description=ImageClassification.description)
TASK_TYPES.register("one-class", OneClassDetection(), description=OneClassDetection.description)
