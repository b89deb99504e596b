"""The unlearning task through the real trial path: pairing, caches, rows, curves and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from lossbench.errors import DataError, SpecError, SuiteError
from lossbench.evaluation import metrics_for
from lossbench.methods import METHODS
from lossbench.objectives import parse_objective
from lossbench.runner import expand
from lossbench.specs import TrialSpec
from lossbench.suite import parse_suite, trial_config
from lossbench.tasks import TASK_TYPES
from lossbench.trial import cached_dataset, execute
from lossbench.unlearning import cache
from lossbench.unlearning.forget import select_forget

URI = "synthetic:classification#n=240&classes=3"
METRICS = ("forget_accuracy", "retain_accuracy", "test_accuracy", "accuracy_gap", "mia_auc", "mia_gap",
           "klom_forget", "klom_retain", "klom_test", "forget_accuracy_pgd", "relative_cost")
FAMILY = {"retrain", "finetune", "ga", "gd", "npo", "npo-rt", "laf", "dmm", "adv-unlearn"}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LOSSBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cache.COUNTS.clear()
    yield


def make_spec(loss: str, seed: int = 0, **options: Any) -> TrialSpec:
    data = cached_dataset(URI)
    table = {"forget": "fraction=0.2", "budget": 6, "oracles": 2, "curve_every": 3, "datamodel_fits": 4,
             "pgd_steps": 2, **options}
    return TrialSpec(
        suite="unlearning-test", suite_version="1", task="unlearning", dataset=URI, data_hash=data.content_hash,
        objective=parse_objective(loss), seed=seed,
        config=trial_config("unlearning", {
            "model": {"family": "mlp", "hidden": [16]},
            "training": {"epochs": 3, "batch_size": 32, "lr": 0.01, "patience": 0},
            "options": table,
        }),
        metrics=METRICS, primary_metric="klom_forget",
    )


def test_every_method_of_a_seed_starts_from_the_same_weights_and_forget_set() -> None:
    rows = {name: execute(make_spec(name)).row for name in ("retrain", "ga", "npo", "dmm")}
    assert all(r["status"] == "ok" for r in rows.values()), {k: r["error_msg"] for k, r in rows.items()}
    assert len({r["pretrain_sha"] for r in rows.values()}) == 1
    assert len({r["forget_key"] for r in rows.values()}) == 1
    # computed once for the seed, read back by every later method
    assert cache.COUNTS["pretrain:computed"] == 1 and cache.COUNTS["pretrain:hit"] == 3
    assert cache.COUNTS["oracle:computed"] == 1 and cache.COUNTS["oracle:hit"] == 3
    other = execute(make_spec("ga", seed=1)).row
    assert other["pretrain_sha"] != rows["ga"]["pretrain_sha"]
    assert cache.COUNTS["pretrain:computed"] == 2


def test_the_forget_set_is_the_seeds_selection() -> None:
    row = execute(make_spec("ga")).row
    spec = make_spec("ga")
    prepared = TASK_TYPES.get("unlearning").prepare(cached_dataset(URI), spec)
    forget = select_forget(prepared.train.y.numpy(), 0, "fraction=0.2")
    assert row["n_forget"] == len(forget) == round(0.2 * len(prepared.train))
    assert row["n_retain"] == len(prepared.train) - len(forget)


def test_the_retrain_row_is_the_oracle() -> None:
    row = execute(make_spec("retrain")).row
    assert row["m_accuracy_gap"] == 0.0 and row["m_mia_gap"] == 0.0
    assert row["m_relative_cost"] == pytest.approx(1.0)
    assert row["steps_run"] == 0 and row["unlearn_s"] == row["retrain_s"] > 0


def test_a_method_row_records_budget_steps_and_curves() -> None:
    result = execute(make_spec("npo", budget=6))
    row = result.row
    assert row["status"] == "ok", row["error_msg"]
    assert row["budget"] == 6 and row["steps_run"] == 6 and row["diverged_at"] == -1
    assert row["value"] == row["m_klom_forget"] >= 0
    steps = sorted({c["step"] for c in result.curves})
    assert steps == [0, 3, 6]
    assert {c["split"] for c in result.curves} == {"forget", "retain", "test"}
    start = {c["split"]: c["value"] for c in result.curves if c["step"] == 0}
    # step 0 is the pre-trained model: the retrain row's gap is to the oracle, this one's to the pre-trained model
    assert 0.0 <= start["forget"] <= 1.0


def test_methods_and_metrics_belong_to_the_unlearning_task() -> None:
    family = {n for n in METHODS.names() if METHODS.get(n).info.tasks == frozenset({"unlearning"})}
    assert family == FAMILY
    offered = set(metrics_for(TASK_TYPES.get("classification")))
    assert not offered & set(METRICS)
    assert set(METRICS) <= set(metrics_for(TASK_TYPES.get("unlearning")))


SUITE = {
    "name": "u", "version": "1", "task": "unlearning", "datasets": [URI], "losses": ["retrain", "ga"],
    "seeds": 1, "primary_metric": "klom_forget", "metrics": ["test_accuracy"],
}


@pytest.mark.parametrize(("change", "words"), [
    ({"options": {"forget": "fraction=0"}}, "strictly between 0 and 1"),
    ({"options": {"forget": "fraction=1"}}, "strictly between 0 and 1"),
    ({"options": {"forget": "fraction=1.0"}}, "strictly between 0 and 1"),
    ({"options": {"budget": 0}}, "budget"),
    ({"options": {"oracles": 1}}, "oracles"),
    ({"losses": ["ce"]}, "'unlearning' task"),
    ({"losses": ["ga", "focal"]}, "'unlearning' task"),
])
def test_bad_unlearning_suites_fail_when_read(change: dict[str, Any], words: str) -> None:
    with pytest.raises(SuiteError, match=words):
        parse_suite({**SUITE, **change})


def test_an_unlearning_method_on_a_classification_suite_is_refused() -> None:
    suite = {**SUITE, "task": "classification", "primary_metric": "accuracy", "metrics": ["accuracy"]}
    with pytest.raises(SuiteError, match="method for unlearning data"):
        parse_suite({**suite, "losses": ["ce", "npo"]})
    with pytest.raises(SpecError, match="npo"):  # --loss npo on a classification suite
        expand(parse_suite({**suite, "losses": ["ce"]}), losses=["npo"])


def test_a_missing_class_fails_before_any_trial() -> None:
    suite = parse_suite({**SUITE, "options": {"forget": "class=7"}})
    with pytest.raises(DataError, match="no class 7"):
        expand(suite)
    specs, _ = expand(parse_suite({**SUITE, "options": {"forget": "class=2"}}))
    assert len(specs) == 2


def test_a_class_forget_set_runs_dmm() -> None:
    spec = make_spec("dmm", forget="class=1")
    row = execute(spec).row
    assert row["status"] == "ok", row["error_msg"]
    assert row["forget"] == "class=1" and row["attribution_s"] > 0
    y = TASK_TYPES.get("unlearning").prepare(cached_dataset(URI), spec).train.y.numpy()
    assert row["n_forget"] == int(np.sum(y == 1))


def test_a_classification_loss_trial_on_the_unlearning_task_fails_clearly() -> None:
    spec = replace(make_spec("ga"), objective=parse_objective("ce"))
    row = execute(spec).row
    assert row["status"] == "failed" and "not an unlearning method" in row["error_msg"]
    assert "Traceback" not in row["error_msg"]


#: What the registered metrics read from a model's UnlearningView, with hand-set values.
VIEW = SimpleNamespace(accuracy={"forget": 0.5, "retain": 0.9, "test": 0.8}, mia_auc=0.7,
                       ref=SimpleNamespace(oracle_accuracy={"forget": 0.75, "retain": 0.95, "test": 0.8},
                                           oracle_mia=0.55))


def test_registered_metrics_read_the_view_against_the_oracle() -> None:
    from lossbench.metrics import METRICS

    view = VIEW
    assert METRICS.get("forget_accuracy")(view) == 0.5
    assert METRICS.get("accuracy_gap")(view) == pytest.approx((0.25 + 0.05 + 0.0) / 3)
    assert METRICS.get("mia_gap")(view) == pytest.approx(0.15)
    assert not METRICS.get("forget_accuracy").greater_is_better and METRICS.get("test_accuracy").greater_is_better
