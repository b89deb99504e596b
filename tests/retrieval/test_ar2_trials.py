"""ANCE and AR2 as registered methods: refused outside the query–document task, paired with infonce through
``trial.setup``, deterministic index refreshes, the ranker checkpointed with the retriever, and rows that carry
the reranked metrics and the cost where compare reads them."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import tomllib
import torch

from lossbench.config import TrainingConfig
from lossbench.errors import SpecError, SuiteError
from lossbench.losses import make_loss
from lossbench.methods import METHODS
from lossbench.methods.retriever_ranker import AR2
from lossbench.metrics import METRICS
from lossbench.objectives import check_task, parse_objective
from lossbench.results import metric_values
from lossbench.suite import parse_suite
from lossbench.tasks import TASK_TYPES
from lossbench.train import ModelLearner, fit, step_state
from lossbench.trial import execute, setup
from tests.retrieval.test_retrieval_tasks import spec

DOCS = "bundled:stdlib-docs"
RANKING = ("recall_at_1", "recall_at_5", "mrr_at_10")
QD_METHODS = {n for n in METHODS.names() if METHODS.get(n).info.tasks == frozenset({"query-document"})}


def test_the_query_document_methods_are_registered_for_that_task_only() -> None:
    assert {"ance", "ar2"} == QD_METHODS


@pytest.mark.parametrize("name", ["ar2", "ance:top_k=5"])
def test_a_classification_suite_refuses_them(name: str) -> None:
    data = tomllib.loads((Path(__file__).parents[2] / "suites" / "quickstart.toml").read_text())
    data["losses"] = ["ce", name]
    with pytest.raises(SuiteError, match=r"losses: '(ar2|ance)' is a method for query-document data; the "
                                         r"suite's task is classification") as err:
        parse_suite(data, "quick.toml")
    assert "retrieval" in (err.value.hint or "")
    # the --loss path of `lossbench run` checks the same
    with pytest.raises(SpecError, match="method for query-document data"):
        check_task(parse_objective(name), TASK_TYPES.get("classification"))
    check_task(parse_objective(name), TASK_TYPES.get("retrieval"))
    with pytest.raises(SpecError, match="declared for binary"):  # a loss no dataset of the task could train
        check_task(parse_objective("focal"), TASK_TYPES.get("retrieval"))


def test_infonce_ance_and_ar2_of_a_seed_share_the_split_and_the_initial_retriever() -> None:
    ready = {name: setup(spec(DOCS, name)) for name in ("infonce", "ance", "ar2")}
    ref = ready["infonce"]
    for name, other in ready.items():
        assert torch.equal(other.prepared.train.X, ref.prepared.train.X), name
        assert torch.equal(other.prepared.test.y, ref.prepared.test.y), name
        assert torch.equal(other.prepared.val.y, ref.prepared.val.y), name
        assert torch.equal(other.rng_state, ref.rng_state), name  # the dropout stream training starts from
        for key, value in ref.model.state_dict().items():
            assert torch.equal(other.model.state_dict()[key], value), (name, key)
    ar2 = ready["ar2"]
    ar2.method.setup(ar2.model, ar2.prepared, ar2.loss, step_state(0))  # the ranker comes from its own stream
    for key, value in ref.model.state_dict().items():
        assert torch.equal(ar2.model.state_dict()[key], value), key


def test_an_index_refresh_and_its_negatives_are_deterministic_for_a_seed() -> None:
    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        ready = setup(dataclasses.replace(spec(DOCS, "ance"), seed=seed))
        ready.method.setup(ready.model, ready.prepared, ready.loss, step_state(seed))
        ids = ready.method.index.refresh(ready.model)
        return ids, ready.method.index.negatives(torch.arange(32), 3, step_state(seed).generator)

    ids, negatives = draw(0)
    again_ids, again_negatives = draw(0)
    assert torch.equal(ids, again_ids) and torch.equal(negatives, again_negatives)
    other_ids, _ = draw(1)
    assert not torch.equal(ids, other_ids)  # another seed: another split and initial retriever


def row_of(name: str, seed: int = 0) -> dict[str, Any]:
    result = execute(dataclasses.replace(spec(DOCS, name, metrics=RANKING), seed=seed))
    assert result.status == "ok", result.row["error_msg"]
    return result.row


def test_ar2_row_carries_reranked_metrics_and_cost_that_compare_reads() -> None:
    row = row_of("ar2:refresh_every=3,negatives=4,top_k=8")
    for metric in RANKING:
        assert 0.0 <= row[f"m_rr_{metric}"] <= 1.0
    assert row["m_ranker_params"] > 0 and row["m_index_refreshes"] >= 1 and row["m_ranker_updates"] >= 1
    assert row["m_index_s"] > 0 and row["m_ranker_s"] > 0 and row["m_rerank_s"] > 0
    choice, values = metric_values(pd.DataFrame([row]), "rr_mrr_at_10")
    assert (choice.higher_is_better, choice.bounded, choice.limits) == (True, True, METRICS.get("mrr_at_10").value_range)
    assert values.iloc[0] == row["m_rr_mrr_at_10"]


def test_ance_and_ar2_trials_are_reproducible() -> None:
    for name in ("ance:refresh_every=3", "ar2:refresh_every=3,negatives=4,top_k=8"):
        a, b = row_of(name, seed=2), row_of(name, seed=2)
        for column in [c for c in a if c.startswith("m_") and not c.endswith("_s")] + ["value", "best_epoch"]:
            assert a[column] == b[column], (name, column)


def test_the_ranker_is_restored_with_the_retrievers_best_epoch() -> None:
    """Validation peaks at epoch 0: the ranker the row reranks with is the one of that epoch, not the last."""
    ready = setup(spec(DOCS, "ar2:refresh_every=2,negatives=3,top_k=5"))
    method: AR2 = ready.method
    training = TrainingConfig(epochs=3, batch_size=64, lr=0.003, patience=0)
    learner = ModelLearner(TASK_TYPES.get("retrieval"), ready.model, ready.prepared, make_loss("infonce"), method,
                           training, seed=0, primary_metric="recall_at_1", metrics=RANKING)
    scores = iter([0.9, 0.5, 0.4])
    learner.validate = lambda members: {0: next(scores)} if members else {}  # type: ignore[method-assign]
    taken: list[Any] = []
    snapshot, finish = learner.snapshot, learner.finish
    learner.snapshot = lambda s: taken.append(snapshot(s)) or taken[-1]  # type: ignore[method-assign]
    last: dict[str, torch.Tensor] = {}
    learner.finish = lambda s, c: last.update(copy.deepcopy(method.ranker.state_dict())) or finish(s, c)  # type: ignore[method-assign]
    (result,) = fit(learner, training, True, "recall_at_1")
    assert result.best_epoch == 0 and result.epochs_run == 3 and len(taken) == 1
    epoch0 = taken[0][1]["ranker"]
    now = method.ranker.state_dict()
    assert all(torch.equal(now[k], epoch0[k]) for k in now)
    assert not all(torch.equal(last[k], epoch0[k]) for k in now)  # the ranker did train after epoch 0


def test_ance_and_ar2_are_skipped_on_class_data_of_the_retrieval_task() -> None:
    result = execute(spec("sklearn:digits", "ar2", class_split="unseen"))
    assert result.status == "skipped" and "query-document" in result.row["error_msg"]
    assert math.isnan(result.row.get("m_recall_at_1", math.nan))
