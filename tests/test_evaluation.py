"""One evaluation for every task: each metric gets the prediction kind it declared, computed once per split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from lossbench.errors import SuiteError
from lossbench.evaluation import evaluate, metrics_for
from lossbench.metrics import METRICS
from lossbench.metrics.base import register_metric
from lossbench.suite import parse_suite
from lossbench.tasks import TASK_TYPES
from lossbench.tasks.base import TaskType

SUITE = {"name": "s", "version": "1", "datasets": ["sklearn:wine"], "losses": ["ce"]}


@pytest.mark.parametrize(("task", "metric", "kind"), [
    ("classification", "rankme", "embeddings"),
    ("classification", "nc1", "features"),
    ("image", "dice", "masks"),
    ("segmentation", "accuracy", "proba"),
    ("retrieval", "f1_tuned", "proba"),
])
def test_suite_refuses_a_metric_its_task_cannot_feed_and_names_those_that_fit(task: str, metric: str,
                                                                              kind: str) -> None:
    with pytest.raises(SuiteError) as err:
        parse_suite({**SUITE, "task": task, "primary_metric": metric})
    message = str(err.value)
    assert f"{metric!r} needs {kind} predictions" in message
    fits = metrics_for(TASK_TYPES.get(task))
    assert fits and f"Metrics that fit: {', '.join(fits)}." in message
    assert all(METRICS.get(m).prediction in TASK_TYPES.get(task).predictions for m in fits)


class Recorder(TaskType):
    """Predicts fixed arrays and counts its calls."""

    name = "recorder"
    predictions = frozenset({"proba", "spectrum"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, frozenset[str]]] = []

    def predict(self, model: Any, prepared: Any, split: str, kinds: frozenset[str]) -> dict[str, tuple[Any, ...]]:
        self.calls.append((split, kinds))
        y = np.array([0, 1, 1, 0])
        proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
        return {"proba": (y, proba), "spectrum": (np.array([3.0, 1.0]),)}


@pytest.fixture
def spectrum_metric() -> Any:
    register_metric("top_singular", greater_is_better=True, tasks=frozenset({"multiclass"}), input="spectrum",
                    bounded=False)(lambda s: float(s.max()))
    yield
    METRICS.unregister("top_singular")


def test_each_metric_gets_its_declared_kind_from_one_prediction_per_split(spectrum_metric: None) -> None:
    task = Recorder()
    out = evaluate(task, None, None, "val", ["top_singular", "accuracy", "auroc"])  # type: ignore[arg-type]
    assert task.calls == [("val", frozenset({"spectrum", "proba"}))]
    assert out == {"top_singular": 3.0, "accuracy": 0.75, "auroc": 1.0}


def test_a_kind_the_model_cannot_give_is_nan(spectrum_metric: None) -> None:
    class NoSpectrum(Recorder):
        def predict(self, *args: Any) -> dict[str, tuple[Any, ...]]:
            return {k: v for k, v in super().predict(*args).items() if k != "spectrum"}

    out = evaluate(NoSpectrum(), None, None, "val", ["top_singular"])  # type: ignore[arg-type]
    assert math.isnan(out["top_singular"])


@pytest.mark.parametrize(("task", "uri", "model"), [
    ("classification", "sklearn:breast_cancer", {"family": "mlp", "hidden": [8]}),
    ("image", "images:digits#positive=0", {"family": "cnn", "channels": [4]}),
    ("one-class", "images:digits#positive=8", {"family": "cnn", "channels": [4]}),
])
def test_a_test_split_never_chooses_a_threshold(task: str, uri: str, model: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from lossbench import evaluation
    from lossbench.runner import expand
    from lossbench.trial import setup, train_setup

    suite = parse_suite({**SUITE, "task": task, "datasets": [uri], "primary_metric": "accuracy", "model": model,
                         "training": {"epochs": 1, "batch_size": 128}, "seeds": 1}, "t.toml")
    (spec,), _ = expand(suite)
    ready = setup(spec)
    train_setup(spec, ready)
    tuned_on: list[np.ndarray] = []
    real = evaluation.best_threshold
    monkeypatch.setattr(evaluation, "best_threshold", lambda m, y, p: tuned_on.append(np.array(y)) or real(m, y, p))
    out = ready.task.evaluate(ready.model, ready.prepared, "test", ("f1_tuned", "accuracy"))
    assert tuned_on and all(np.array_equal(y, ready.prepared.val.y.numpy()) for y in tuned_on)
    test_y, test_proba = ready.task.predict(ready.model, ready.prepared, "test", frozenset({"proba"}))["proba"]
    f1 = METRICS.get("f1")
    assert out["f1_tuned"] == f1(test_y, test_proba, threshold=out["f1_threshold"])  # the validation threshold
    assert out["accuracy_tuned"] == METRICS.get("accuracy")(test_y, test_proba, threshold=out["accuracy_threshold"])
