"""Retrieval task types, sources and methods through the real trial path, on small data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from lossbench.errors import SuiteError
from lossbench.losses import make_loss
from lossbench.methods import METHODS
from lossbench.methods.base import Batch, StepState
from lossbench.objectives import parse_objective
from lossbench.sources import load_dataset
from lossbench.specs import TrialSpec
from lossbench.suite import load_suite, parse_suite, trial_config
from lossbench.tasks import TASK_TYPES
from lossbench.trial import cached_dataset, execute

METRICS = ("recall_at_1", "map_at_r", "global_auroc", "rankme", "uniformity", "tolerance")


def spec(uri: str, loss: str, task: str = "retrieval", metrics: tuple[str, ...] = METRICS,
         primary: str = "recall_at_1", **options: Any) -> TrialSpec:
    return TrialSpec(
        suite="retrieval-test", suite_version="1", task=task, dataset=uri, data_hash=cached_dataset(uri).content_hash,
        objective=parse_objective(loss), seed=0,
        config=trial_config(task, {"model": {"family": "mlp", "hidden": [32]},
                                   "training": {"epochs": 2, "batch_size": 64, "lr": 0.003, "patience": 0},
                                   "split": {"test": 0.2, "val": 0.2}, "options": options}),
        metrics=metrics, primary_metric=primary,
    )


def test_digits_unseen_class_split_evaluates_on_held_out_classes() -> None:
    s = spec("sklearn:digits", "contrastive", class_split="unseen")
    prepared = TASK_TYPES.get("retrieval").prepare(load_dataset("sklearn:digits"), s)
    assert prepared.kind == "embedding" and prepared.n_classes == 5
    digits = load_dataset("sklearn:digits")
    assert len(prepared.test) == int(np.isin(digits.y, [5, 6, 7, 8, 9]).sum())
    assert len(prepared.train) + len(prepared.val) == int(np.isin(digits.y, [0, 1, 2, 3, 4]).sum())


@pytest.mark.parametrize("loss", ["proxy-anchor", "metrix:base=multi-similarity", "g-simclr"])
def test_class_as_relevance_trial_runs(loss: str) -> None:
    result = execute(spec("sklearn:digits", loss, class_split="unseen"))
    assert result.status == "ok", result.row["error_msg"]
    assert 0.5 < result.row["m_recall_at_1"] <= 1.0
    assert 0.0 <= result.row["m_map_at_r"] <= result.row["m_recall_at_1"]


def test_pair_losses_are_skipped_on_class_data_and_class_losses_on_pairs() -> None:
    assert execute(spec("sklearn:digits", "infonce")).status == "skipped"
    assert execute(spec("bundled:stdlib-docs", "triplet")).status == "skipped"


def test_query_document_prepare_and_trial() -> None:
    s = spec("bundled:stdlib-docs", "mw-auc", hard_negatives=2)
    data = load_dataset("bundled:stdlib-docs")
    assert data.meta["kind"] == "pairs" and len(data.X) > 600
    prepared = TASK_TYPES.get("retrieval").prepare(data, s)
    assert prepared.kind == "query-document"
    assert prepared.train.X.shape[1:] == (4, 2048)
    # the positive slot is the row's own document, hard negatives are other documents
    corpus = prepared.info["corpus"]
    for row in range(5):
        doc = int(prepared.train.y[row])
        assert torch.equal(prepared.train.X[row, 1], corpus[doc])
        assert not any(torch.equal(prepared.train.X[row, 2 + h], corpus[doc]) for h in range(2))
    result = execute(s)
    assert result.status == "ok", result.row["error_msg"]
    assert result.row["m_recall_at_1"] > 0.1  # lexical start: far above chance (1/685)


def test_letter_is_shipped_and_mnist1d_generates_offline() -> None:
    letter = load_dataset("bundled:letter")
    assert letter.X.shape == (5000, 16) and letter.n_classes == 26
    pytest.importorskip("mnist1d")
    m = load_dataset("mnist1d:default#n=500")
    assert m.X.shape == (500, 40) and m.n_classes == 10


def test_xmc_trial_on_yeast() -> None:
    pytest.importorskip("river")
    s = spec("river:yeast", "soft-topk", task="xmc", metrics=("precision_at_1", "ndcg_at_5"), primary="precision_at_1")
    result = execute(s)
    assert result.status == "ok", result.row["error_msg"]
    assert result.row["m_precision_at_1"] > 0.5


def test_metrix_requires_a_pair_loss_with_a_mixed_term() -> None:
    method = METHODS.get("metrix")()
    loss = make_loss("nt-xent")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    batch = Batch(torch.randn(8, 4), torch.arange(8) % 2, torch.arange(8))
    with pytest.raises(Exception, match="metrix wraps"):
        method.step(model, batch, loss, StepState(generator=torch.Generator().manual_seed(0)))


def test_packaged_suites_validate_and_options_are_checked() -> None:
    assert load_suite("retrieval").task == "retrieval"
    assert load_suite("xmc").task == "xmc"
    base = {"name": "x", "version": "1", "task": "retrieval", "datasets": ["sklearn:digits"], "losses": ["triplet"],
            "primary_metric": "recall_at_1"}
    with pytest.raises(SuiteError, match="class_split"):
        parse_suite({**base, "options": {"class_split": "sideways"}})
    with pytest.raises(SuiteError, match="unknown option"):
        parse_suite({**base, "options": {"colour": 1}})
