"""One-class detection on a separable toy case; EER and neural-collapse metrics on known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lossbench.config import TrainingConfig
from lossbench.losses import make_loss
from lossbench.methods import METHODS
from lossbench.methods.hyperbolic import HyperbolicMLR, mobius_add, poincare_distance, to_ball
from lossbench.metrics.collapse import nc1, nc2
from lossbench.metrics.detection import eer
from lossbench.objectives import parse_objective
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.suite import trial_config
from lossbench.tasks import TASK_TYPES
from lossbench.train import train


def toy() -> Dataset:
    rng = np.random.default_rng(0)
    real = rng.normal(3.0, 0.5, (120, 4))
    other = rng.normal(-3.0, 0.5, (120, 4))
    X = pd.DataFrame(np.r_[real, other], columns=[f"x{i}" for i in range(4)])
    return Dataset("toy", "toy:oc", X, np.r_[np.ones(120), np.zeros(120)], ["other", "real"])


@pytest.mark.parametrize("method", ["hyp-ce", "hyp-pc"])
def test_one_class_training_separates_a_separable_toy(method: str) -> None:
    task = TASK_TYPES.get("one-class")
    spec = TrialSpec("t", "1", "one-class", "toy:oc", "", parse_objective(method), 0,
                     config=trial_config("one-class", {"model": {"family": "cnn", "mlp_hidden": [16]},
                                                       "split": {"test": 0.25, "val": 0.25}}))
    prepared = task.prepare(toy(), spec)
    assert set(prepared.train.y.tolist()) == {1} and prepared.kind == "one-class"
    assert set(prepared.test.y.tolist()) == {0, 1}
    torch.manual_seed(0)
    model = task.build_model(prepared, spec)
    loss = make_loss("ce", {}, **prepared.loss_context(0))
    train(task, model, prepared, loss, METHODS.get(method)(),
          training=TrainingConfig(epochs=15, batch_size=16, lr=0.01, patience=0), seed=0, primary_metric="auroc")
    scores = task.evaluate(model, prepared, "test", ("auroc", "eer"))
    assert scores["auroc"] > 0.95 and scores["eer"] < 0.1


def test_eer_known_values() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    separable = np.c_[1 - np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]]
    assert eer(y, separable) == pytest.approx(0.0)
    reversed_ = separable[:, ::-1]
    assert eer(y, reversed_) == pytest.approx(1.0)


def test_poincare_geometry() -> None:
    x = to_ball(torch.randn(5, 3), 0.1, 2.0)
    assert (x.norm(dim=1) < 0.1**-0.5).all()
    assert torch.allclose(mobius_add(torch.zeros(5, 3), x, 0.1), x, atol=1e-6)
    d = poincare_distance(x, x, 0.1)
    assert torch.allclose(d, torch.zeros(5), atol=1e-3)
    # artanh distance from 0: (2/sqrt(c)) artanh(sqrt(c)|x|)
    ref = 2 / 0.1**0.5 * torch.atanh(0.1**0.5 * x.norm(dim=1))
    assert torch.allclose(poincare_distance(torch.zeros(5, 3), x, 0.1), ref, atol=1e-5)
    logits = HyperbolicMLR(3, 2, 0.1, torch.Generator().manual_seed(0))(x)
    assert logits.shape == (5, 2) and torch.isfinite(logits).all()


def test_neural_collapse_metrics() -> None:
    k, d = 4, 6
    etf = np.eye(k) - 1 / k  # centred one-hot: a simplex ETF in R^k, padded to d dims
    means = np.c_[etf, np.zeros((k, d - k))] * 3
    y = np.repeat(np.arange(k), 10)
    collapsed = means[y]
    assert nc1(y, collapsed) == pytest.approx(0.0, abs=1e-9)
    assert nc2(y, collapsed) == pytest.approx(0.0, abs=1e-9)
    noisy = collapsed + np.random.default_rng(0).normal(0, 1, collapsed.shape)
    assert nc1(y, noisy) > 0.01
