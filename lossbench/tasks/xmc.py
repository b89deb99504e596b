"""Multi-label ("extreme" classification) retrieval: rank labels for each row with a dual encoder.

Data: a :class:`~lossbench.sources.base.Dataset` with a ``targets`` 0/1 matrix (``river:yeast``). The model
(:class:`~lossbench.models.retrieval.LabelDualEncoder`) embeds rows with an MLP and scores them against learnt
label embeddings by cosine; losses take the (B, L) scores and the multi-hot target (the ``scores`` contract).
Evaluation ranks all labels per row: precision@k, NDCG@k, Recall@k (a relevant label in the top k).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from lossbench.errors import DataError
from lossbench.evaluation import Predictions
from lossbench.models.retrieval import LabelDualEncoder
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TaskType, TensorSplit
from lossbench.tasks.classification import make_preprocessor, split_seed
from lossbench.tasks.retrieval import positive_int_options


@dataclass(frozen=True)
class XmcOptions:
    embedding_dim: int = 64


class MultilabelRetrieval(TaskType):
    name = "xmc"
    description = "Multi-label classification as label retrieval with a dual encoder"
    loss_tasks = frozenset({"multilabel"})
    predictions = frozenset({"ranking"})
    default_model = "mlp"  # the row tower of the label dual encoder

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> XmcOptions:
        return positive_int_options(table, XmcOptions, fail)

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        if data.targets is None:
            raise DataError(f"Dataset {data.uri!r} has no multi-label targets.", "Use a multi-label source: river:yeast.")
        test, val = spec.config.split.test, spec.config.split.val
        idx = np.arange(len(data.y))
        rest, test_idx = train_test_split(idx, test_size=test, random_state=split_seed(spec.seed, "test"))
        train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test), random_state=split_seed(spec.seed, "val"))
        pre = make_preprocessor(data.X).fit(data.X.iloc[train_idx])

        def part(i: np.ndarray) -> TensorSplit:
            return TensorSplit(torch.as_tensor(pre.transform(data.X.iloc[i]), dtype=torch.float32),
                               torch.as_tensor(data.targets[i], dtype=torch.long))

        n_labels = data.targets.shape[1]
        return Prepared(
            train=part(train_idx), val=part(val_idx) if len(val_idx) else None, test=part(test_idx),
            n_features=data.X.shape[1], n_classes=n_labels, kind="multilabel",
            class_counts=data.targets[train_idx].sum(0).astype(int).tolist(),
            info={"n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx)},
            embedding_dim=spec.config.options.embedding_dim,
        )

    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        # the suite's model options shape the row tower; the label embeddings are the encoder's own
        return LabelDualEncoder(prepared.n_features, prepared.n_classes, prepared.embedding_dim,
                                **spec.config.model.options)

    @torch.no_grad()
    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        """``ranking``: every label scored for each row; a row's own labels are relevant."""
        part = prepared.split(split)
        was = model.training
        model.eval()
        scores = model(part.X).cpu().double().numpy()
        model.train(was)
        return {"ranking": (scores, part.y.cpu().numpy() > 0)}


TASK_TYPES.register("xmc", MultilabelRetrieval(), description=MultilabelRetrieval.description)
