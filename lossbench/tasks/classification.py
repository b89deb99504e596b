"""Tabular classification (binary and multi-class) with an MLP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from torch import nn

from lossbench import streams
from lossbench.errors import DataError
from lossbench.evaluation import Predictions
from lossbench.models import MODELS
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TaskType, TensorSplit
from lossbench.tasks.label_noise import LabelNoise, inject_label_noise, parse_noise, swap_table

#: One row per split (train, validation, test) at least, or stratification fails.
MIN_CLASS_ROWS = 3


def split_seed(seed: int, which: str) -> int:
    """``random_state`` of one of a trial's splits (``which``: "test", "val", ...), from the split stream."""
    return streams.seed_of(seed, "split", which, bits=32)


def split_indices(y: np.ndarray, seed: int, test: float, val: float, uri: str) -> tuple[np.ndarray, ...]:
    """Stratified train/val/test indices; the same for every loss given (dataset, seed)."""
    counts = np.bincount(y)
    if counts[counts > 0].min() < MIN_CLASS_ROWS:
        rare = int(np.flatnonzero((counts > 0) & (counts < MIN_CLASS_ROWS))[0])
        raise DataError(
            f"Dataset {uri!r}: class {rare} has {counts[rare]} row(s), too few for a stratified "
            "train/validation/test split.",
            "Drop or merge that class (at least 3 rows per class).",
        )
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=test, stratify=y, random_state=split_seed(seed, "test"))
    if val <= 0:
        return rest, np.array([], dtype=np.int64), test_idx
    train_idx, val_idx = train_test_split(
        rest, test_size=val / (1 - test), stratify=y[rest], random_state=split_seed(seed, "val")
    )
    return train_idx, val_idx, test_idx


#: A categorical column keeps at most this many one-hot columns; rarer levels share one "infrequent" column.
MAX_CATEGORIES = 32
#: Levels seen in fewer training rows than this are treated as infrequent.
MIN_FREQUENCY = 5
#: Non-finite or absurdly large numeric values are treated as missing (an overflowing scaler would give NaN).
MAX_ABS = 1e12
MISSING = "__missing__"


def numeric_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
            and not isinstance(X[c].dtype, pd.CategoricalDtype)]


def clean_numeric(X: pd.DataFrame) -> pd.DataFrame:
    """float64 with inf and huge values as NaN: a per-row rule, so it can be applied before splitting."""
    out = X.astype(np.float64)
    return out.where(np.isfinite(out) & (out.abs() <= MAX_ABS))


def as_category_strings(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Every categorical value as a string, missing ones as their own level (mixed types break the encoder)."""
    frame = pd.DataFrame(X)
    return frame.astype(object).where(frame.notna(), MISSING).astype(str).to_numpy(dtype=object)


def make_preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """Impute and scale numeric columns; one-hot encode the others (missing = its own level).

    Every statistic (medians, means, scales, category lists) is learnt in ``fit``, which the task calls on
    the training rows only. All-NaN training columns become 0 (``keep_empty_features``), constant ones 0
    after scaling; high-cardinality categoricals are capped at ``MAX_CATEGORIES`` one-hot columns.
    """
    numeric = numeric_columns(X)
    categorical = [c for c in X.columns if c not in numeric]
    return ColumnTransformer(
        [
            ("num", make_pipeline(FunctionTransformer(clean_numeric, feature_names_out="one-to-one"),
                                  SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
             numeric),
            ("cat", make_pipeline(FunctionTransformer(as_category_strings, feature_names_out="one-to-one"),
                                  OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                                max_categories=MAX_CATEGORIES, min_frequency=MIN_FREQUENCY,
                                                dtype=np.float32)), categorical),
        ],
        sparse_threshold=0.0,
    )


def to_split(X: np.ndarray, y: np.ndarray) -> TensorSplit:
    return TensorSplit(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))


#: How ``*_tuned`` metrics pick the threshold; recorded in every row as ``threshold_rule``.
THRESHOLD_RULE = "max-on-val"


@dataclass(frozen=True)
class ClassificationOptions:
    noise: LabelNoise | None = None  # training labels (and validation labels with noise.val); test stays clean


class TabularClassification(TaskType):
    name = "classification"
    description = "Tabular binary or multi-class classification with an MLP"
    loss_tasks = frozenset({"binary", "multiclass"})
    predictions = frozenset({"proba"})
    default_model = "mlp"
    predicts_from_outputs = True

    def check_data(self, data: Dataset) -> None:
        """Fail before any trial runs, rather than record the same failure for every trial of the dataset."""
        counts = np.bincount(data.y)
        if counts[counts > 0].min() < MIN_CLASS_ROWS:
            rare = int(np.flatnonzero((counts > 0) & (counts < MIN_CLASS_ROWS))[0])
            raise DataError(
                f"Dataset {data.uri!r}: class {data.classes[rare]!r} has {counts[rare]} row(s), too few for a "
                "stratified train/validation/test split.",
                f"Drop or merge that class (at least {MIN_CLASS_ROWS} rows per class).",
            )
        if int(data.X.nunique(dropna=False).max()) <= 1:
            raise DataError(f"Dataset {data.uri!r}: every feature column is constant, so no loss can learn anything.",
                            "Check the file and the target=/drop= options.")

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> ClassificationOptions:
        """``[options]``: ``noise = {type = "symmetric", rate = 0.3}`` (training labels; validation too with val)."""
        for key in table:
            if key != "noise":
                raise fail(key, "unknown option.", "The classification task accepts: noise.")
        return ClassificationOptions(noise=parse_noise(table["noise"], fail) if "noise" in table else None)

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        X = data.X
        split = spec.config.split
        train_idx, val_idx, test_idx = split_indices(data.y, spec.seed, split.test, split.val, data.uri)
        # Fitted on the training rows only, so no validation or test statistic reaches the model.
        pre = make_preprocessor(X).fit(X.iloc[train_idx])
        k = data.n_classes
        labels = {"train": data.y[train_idx], "val": data.y[val_idx], "test": data.y[test_idx]}
        record: dict[str, Any] = {"threshold_rule": THRESHOLD_RULE if k == 2 else "argmax"}
        noise = spec.config.options.noise
        if noise is not None:
            swaps = self.swaps(noise, data) if noise.type == "swap" else None
            for part in ("train", "val") if noise.val else ("train",):
                labels[part], changed = inject_label_noise(labels[part], k, noise, spec.seed, count="per-row",
                                                           swaps=swaps, split=part)
                if part == "train":
                    record.update(noise_type=noise.type, noise_rate=noise.rate, noise_realised=float(changed.mean()))
        y_train = labels["train"]
        parts = {name: to_split(pre.transform(X.iloc[i]), labels[name]) for name, i in
                 (("train", train_idx), ("val", val_idx), ("test", test_idx)) if len(i)}
        return Prepared(
            train=parts["train"],
            val=parts.get("val"),
            test=parts["test"],
            n_features=int(parts["train"].X.shape[1]),
            n_classes=k,
            kind="binary" if k == 2 else "multiclass",
            class_counts=np.bincount(y_train, minlength=k).tolist(),  # what the loss can know: the noisy labels
            info={"n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx), "record": record},
        )

    @staticmethod
    def swaps(noise: LabelNoise, data: Dataset) -> np.ndarray:
        try:
            return swap_table(noise.pairs, data.classes, data.uri)
        except ValueError as exc:
            raise DataError(f"noise.pairs: {exc}.", "List pairs of this dataset's class names.") from None

    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        model = spec.config.model
        return MODELS.get(model.family)(prepared.n_features, prepared.n_classes, **model.options)

    @torch.no_grad()
    def predict_proba(self, model: nn.Module, X: torch.Tensor, batch: int = 8192) -> np.ndarray:
        """Class probabilities; a loss whose outputs are not probabilities still ranks, so AUROC/AUPRC apply."""
        was_training = model.training
        model.eval()
        out = torch.cat([model(X[i : i + batch]) for i in range(0, len(X), batch)])
        model.train(was_training)
        return proba_from_logits(out)

    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        part = prepared.split(split)
        return {"proba": (part.y.cpu().numpy(), self.predict_proba(model, part.X))}

    def from_outputs(self, outputs: torch.Tensor, part: TensorSplit) -> Predictions:
        return {"proba": (part.y.cpu().numpy(), proba_from_logits(outputs))}


def proba_from_logits(logits: torch.Tensor) -> np.ndarray:
    """Softmax over the last dimension, as float64 numpy (what the metrics take)."""
    return torch.softmax(logits.detach().float(), dim=-1).cpu().numpy().astype(np.float64)


TASK_TYPES.register("classification", TabularClassification(), description=TabularClassification.description)
