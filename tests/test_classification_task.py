"""Leak-free preprocessing, validation-only threshold tuning, label noise, and an end-to-end CSV trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.errors import SuiteError
from lossbench.metrics import METRICS
from lossbench.metrics.threshold import best_threshold, candidates, confusion_at
from lossbench.objectives import parse_objective
from lossbench.sources import load_dataset
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.suite import parse_suite, trial_config
from lossbench.tasks.classification import MAX_CATEGORIES, TabularClassification, split_indices
from lossbench.tasks.label_noise import LabelNoise, inject_label_noise
from lossbench.trial import execute

TASK = TabularClassification()


def spec_for(ds: Dataset, seed: int = 0, options: dict[str, Any] | None = None, **kw: Any) -> TrialSpec:
    config = {"model": {"family": "mlp", "hidden": [16]}, "training": {"epochs": 3, "batch_size": 32},
              "split": {"test": 0.25, "val": 0.25}, "options": options or {}}
    return TrialSpec("t", "1", "classification", ds.uri, ds.content_hash, parse_objective(kw.get("loss", "ce")), seed,
                     trial_config("classification", config),
                     kw.get("metrics", ("f1", "auprc")), kw.get("primary", "f1_tuned"))


def messy_frame(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "x": rng.normal(size=n),
        "const": np.ones(n),
        "all_nan": np.full(n, np.nan),
        "with_inf": np.where(rng.random(n) < 0.05, np.inf, rng.normal(size=n)),
        "huge": rng.normal(size=n) * 1e30,
        "colour": rng.choice(["red", "green", "blue", None], size=n),
        "id_like": [f"id{i}" for i in range(n)],  # high cardinality
        "mixed": rng.choice(["a", 1, 2.5, None], size=n).astype(object),
        "flag": rng.random(n) < 0.5,
    })
    y = (X["x"] + rng.normal(scale=0.5, size=n) > 0.8).astype(np.int64).to_numpy()
    return X, y


def test_preprocessing_survives_messy_columns() -> None:
    X, y = messy_frame()
    ds = Dataset("messy", "synthetic:messy", X, y, ["0", "1"])
    prepared = TASK.prepare(ds, spec_for(ds))
    for part in (prepared.train, prepared.val, prepared.test):
        assert torch.isfinite(part.X).all()
    # the identifier column is capped, not expanded into one column per row
    assert prepared.n_features < 8 + 3 * MAX_CATEGORIES


def test_no_test_or_validation_statistic_reaches_the_model() -> None:
    X, y = messy_frame(seed=1)
    ds = Dataset("messy", "synthetic:messy", X, y, ["0", "1"])
    spec = spec_for(ds, seed=3)
    _, val_idx, test_idx = split_indices(y, 3, 0.25, 0.25, ds.uri)
    perturbed = X.copy()
    held_out = np.concatenate([val_idx, test_idx])
    rng = np.random.default_rng(9)
    perturbed.loc[held_out, "x"] = rng.normal(loc=1000, scale=50, size=len(held_out))
    perturbed.loc[held_out, "with_inf"] = np.nan
    perturbed.loc[held_out, "colour"] = "never-seen-in-train"
    ds2 = Dataset("messy", "synthetic:messy", perturbed, y, ["0", "1"])
    a, b = TASK.prepare(ds, spec), TASK.prepare(ds2, spec)
    assert torch.equal(a.train.X, b.train.X), "training tensors depend on held-out rows"
    assert torch.equal(a.train.y, b.train.y)
    assert a.n_features == b.n_features
    assert not torch.equal(a.test.X, b.test.X)  # the perturbation did reach the test rows themselves


def test_tuned_threshold_is_chosen_on_validation_only() -> None:
    ds = load_dataset("synthetic:classification#n=800&minority=0.15&seed=2")
    prepared = TASK.prepare(ds, spec_for(ds))
    torch.manual_seed(0)
    model = TASK.build_model(prepared, spec_for(ds))
    out = TASK.evaluate(model, prepared, "test", ("f1", "mcc"))
    assert {"f1", "f1_tuned", "f1_threshold", "mcc_tuned", "mcc_threshold"} <= set(out)
    p_val = TASK.predict_proba(model, prepared.val.X)
    t, _ = best_threshold(METRICS.get("f1"), prepared.val.y.numpy(), p_val)
    assert out["f1_threshold"] == pytest.approx(t)
    p_test = TASK.predict_proba(model, prepared.test.X)
    assert out["f1_tuned"] == pytest.approx(METRICS.get("f1")(prepared.test.y.numpy(), p_test, threshold=t))
    # changing test labels changes test scores but never the threshold
    prepared.test.y = 1 - prepared.test.y
    again = TASK.evaluate(model, prepared, "test", ("f1",))
    assert again["f1_threshold"] == out["f1_threshold"]
    # on the validation split itself, f1_tuned is the best value there (what early stopping uses)
    val = TASK.evaluate(model, prepared, "val", ("f1_tuned",))
    assert val["f1_tuned"] == pytest.approx(max(
        METRICS.get("f1")(prepared.val.y.numpy(), p_val, threshold=c) for c in candidates(p_val[:, 1])))
    assert "f1_threshold" not in val


def test_vectorised_sweep_matches_the_metric() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(np.int64)
    s = np.round(np.clip(0.3 * y + 0.7 * rng.random(200), 0, 1), 2)  # with ties
    proba = np.c_[1 - s, s]
    ts = candidates(s)
    for name in ("f1", "mcc", "accuracy", "balanced_accuracy", "gmean"):
        m = METRICS.get(name)
        vec = m.from_counts(*confusion_at(y, s, ts))
        assert np.allclose(vec, [m(y, proba, threshold=t) for t in ts]), name


def per_row_noise(y: np.ndarray, k: int, kind: str, rate: float, seed: int) -> np.ndarray:
    return inject_label_noise(y, k, LabelNoise(kind, rate), seed, count="per-row")[0]


@pytest.mark.parametrize("kind", ["symmetric", "pair"])
def test_noise_rate_and_determinism(kind: str) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=20000)
    noisy = per_row_noise(y, 4, kind, 0.3, seed=5)
    assert abs(np.mean(noisy != y) - 0.3) < 0.015
    assert np.array_equal(noisy, per_row_noise(y, 4, kind, 0.3, seed=5))
    assert not np.array_equal(noisy, per_row_noise(y, 4, kind, 0.3, seed=6))
    if kind == "pair":
        changed = noisy != y
        assert np.all(noisy[changed] == (y[changed] + 1) % 4)


@pytest.mark.parametrize("count", ["per-row", "exact"])
def test_binary_pair_noise_flips_positives_only(count: str) -> None:
    y = np.array([0, 1] * 5000)
    noisy, flipped = inject_label_noise(y, 2, LabelNoise("pair", 0.4), seed=0, count=count)
    assert np.all(noisy[y == 0] == 0) and np.array_equal(flipped, noisy != y)
    assert abs(np.mean(noisy[y == 1] == 0) - 0.4) < 0.03


def test_asymmetric_is_the_earlier_name_of_pair_noise() -> None:
    old = parse_suite({**SUITE, "options": {"noise": {"type": "asymmetric", "rate": 0.2}}})
    new = parse_suite({**SUITE, "options": {"noise": {"type": "pair", "rate": 0.2}}})
    ds = load_dataset("sklearn:wine")
    prepared = [TASK.prepare(ds, spec_for(ds, options=dict(s.config.options_table))) for s in (old, new)]
    assert torch.equal(prepared[0].train.y, prepared[1].train.y)


def test_noise_touches_training_labels_only_and_is_recorded() -> None:
    ds = load_dataset("synthetic:classification#n=1000&classes=3&minority=0.3&seed=1")
    clean = TASK.prepare(ds, spec_for(ds, seed=2))
    noisy = TASK.prepare(ds, spec_for(ds, seed=2, options={"noise": {"type": "symmetric", "rate": 0.3}}))
    assert torch.equal(clean.val.y, noisy.val.y) and torch.equal(clean.test.y, noisy.test.y)
    realised = float((clean.train.y != noisy.train.y).float().mean())
    assert noisy.info["record"]["noise_realised"] == pytest.approx(realised)
    assert 0.25 < realised < 0.35
    assert noisy.info["record"]["noise_type"] == "symmetric"


SUITE = {"name": "s", "version": "1", "task": "classification", "datasets": ["sklearn:wine"], "losses": ["ce"],
         "primary_metric": "f1_tuned"}


@pytest.mark.parametrize(("options", "match"), [
    ({"noise": {"type": "gaussian", "rate": 0.3}}, "noise.type"),
    ({"noise": {"type": "swap", "rate": 0.3}}, "noise.pairs"),
    ({"noise": {"type": "pair", "rate": 0.3, "pairs": [["a", "b"]]}}, "only swap noise"),
    ({"noise": {"type": "swap", "rate": 0.3, "pairs": [["a", "b"], ["b", "c"]]}}, "two pairs"),
    ({"noise": {"type": "swap", "rate": 0.3, "pairs": [["a", "b", "c"]]}}, "two-class lists"),
    ({"noise": {"type": "uniform", "rate": 0.3, "val": "yes"}}, "noise.val"),
    ({"noise": {"type": "symmetric", "rate": 1.5}}, "noise.rate"),
    ({"noise": {"type": "symmetric", "rate": "high"}}, "noise.rate"),
    ({"noise": {"type": "symmetric", "rate": 0.1, "seed": 3}}, "noise.seed"),
    ({"noise": 0.3}, "must be a table"),
    ({"nosie": {}}, "unknown option"),
])
def test_noise_option_validation(options: dict[str, Any], match: str) -> None:
    with pytest.raises(SuiteError, match=match):
        parse_suite({**SUITE, "options": options})


def test_tuned_metric_is_a_valid_primary_metric() -> None:
    suite = parse_suite({**SUITE, "options": {"noise": {"type": "asymmetric", "rate": 0.2}}})
    assert suite.primary_metric == "f1_tuned" and "f1_tuned" in suite.metrics


def test_csv_with_missing_values_and_categoricals_trains_end_to_end(tmp_path: Path) -> None:
    X, y = messy_frame(n=300, seed=4)
    frame = X.drop(columns=["huge"]).assign(label=np.where(y == 1, "yes", "no"))
    frame.loc[::7, "x"] = np.nan
    path = tmp_path / "messy.csv"
    frame.to_csv(path, index=False)
    ds = load_dataset(f"csv:{path}#target=label")
    spec = spec_for(ds, metrics=("f1", "auprc", "mcc", "auroc"), primary="f1_tuned",
                    options={"noise": {"type": "symmetric", "rate": 0.1}})
    row = execute(spec).row
    assert row["status"] == "ok", row["error_msg"]
    for col in ("m_f1", "m_f1_tuned", "m_f1_threshold", "m_mcc_tuned", "m_auprc", "m_auroc"):
        assert np.isfinite(row[col]), col
    assert row["value"] == row["m_f1_tuned"]
    assert row["threshold_rule"] == "max-on-val"
    assert row["noise_type"] == "symmetric" and 0 < row["noise_realised"] < 0.25


@settings(max_examples=40, deadline=None)
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=60))
def test_sweep_matches_sklearn_on_arbitrary_scores(pairs: list[tuple[int, int]]) -> None:
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] / 20 for p in pairs])
    proba = np.c_[1 - s, s]
    ts = candidates(s)
    for name in ("f1", "mcc", "balanced_accuracy"):
        m = METRICS.get(name)
        assert np.allclose(m.from_counts(*confusion_at(y, s, ts)), [m(y, proba, threshold=t) for t in ts]), name
