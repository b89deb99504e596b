"""Tabular classification (binary and multi-class) with an MLP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

from lossbench.errors import DataError
from lossbench.metrics import METRICS
from lossbench.models import MODELS
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TaskType, TensorSplit


def split_indices(y: np.ndarray, seed: int, test: float, val: float, uri: str) -> tuple[np.ndarray, ...]:
    """Stratified train/val/test indices; the same for every loss given (dataset, seed)."""
    counts = np.bincount(y)
    if counts[counts > 0].min() < 3:
        rare = int(np.flatnonzero((counts > 0) & (counts < 3))[0])
        raise DataError(
            f"Dataset {uri!r}: class {rare} has {counts[rare]} row(s), too few for a stratified "
            "train/validation/test split.",
            "Drop or merge that class (at least 3 rows per class).",
        )
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=test, stratify=y, random_state=seed)
    if val <= 0:
        return rest, np.array([], dtype=np.int64), test_idx
    train_idx, val_idx = train_test_split(
        rest, test_size=val / (1 - test), stratify=y[rest], random_state=seed + 1
    )
    return train_idx, val_idx, test_idx


def make_preprocessor(X: pd.DataFrame) -> ColumnTransformer:
    """Impute and scale numeric columns; impute and one-hot encode the others."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
             numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="most_frequent", keep_empty_features=True),
                                  OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
        ],
        sparse_threshold=0.0,
    )


def to_split(X: np.ndarray, y: np.ndarray) -> TensorSplit:
    return TensorSplit(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))


class TabularClassification(TaskType):
    name = "classification"
    description = "Tabular binary or multi-class classification with an MLP"
    loss_tasks = frozenset({"binary", "multiclass"})

    def validate_options(self, options: Mapping[str, Any], fail: Fail) -> None:
        super().validate_options(options, fail)

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        split = spec.config.get("split", {})
        X = data.X.replace([np.inf, -np.inf], np.nan)
        train_idx, val_idx, test_idx = split_indices(
            data.y, spec.seed, float(split.get("test", 0.2)), float(split.get("val", 0.2)), data.uri
        )
        # Fitted on the training rows only, so no validation or test statistic reaches the model.
        pre = make_preprocessor(X).fit(X.iloc[train_idx])
        parts = {name: to_split(pre.transform(X.iloc[i]), data.y[i]) for name, i in
                 (("train", train_idx), ("val", val_idx), ("test", test_idx)) if len(i)}
        k = data.n_classes
        return Prepared(
            train=parts["train"],
            val=parts.get("val"),
            test=parts["test"],
            n_features=int(parts["train"].X.shape[1]),
            n_classes=k,
            kind="binary" if k == 2 else "multiclass",
            class_counts=np.bincount(data.y[train_idx], minlength=k).tolist(),
            info={"n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx)},
        )

    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        options = {k: v for k, v in spec.config.get("model", {}).items() if k != "family"}
        family = spec.config.get("model", {}).get("family", "mlp")
        return MODELS.get(family)(prepared.n_features, prepared.n_classes, **options)

    @torch.no_grad()
    def predict_proba(self, model: nn.Module, X: torch.Tensor, batch: int = 8192) -> np.ndarray:
        was_training = model.training
        model.eval()
        out = torch.cat([torch.softmax(model(X[i : i + batch]).float(), dim=1) for i in range(0, len(X), batch)])
        model.train(was_training)
        return out.cpu().numpy().astype(np.float64)

    def evaluate(
        self, model: nn.Module, prepared: Prepared, split: str, metrics: tuple[str, ...]
    ) -> dict[str, float]:
        part = prepared.split(split)
        proba = self.predict_proba(model, part.X)
        y = part.y.cpu().numpy()
        return {m: METRICS.get(m)(y, proba) for m in metrics}


TASK_TYPES.register("classification", TabularClassification(), description=TabularClassification.description)
