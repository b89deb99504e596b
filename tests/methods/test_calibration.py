"""Post-hoc calibration: argmax unchanged, validation NLL lowered on an overconfident model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lossbench.methods.calibration import CACalibration, TemperatureScaling, ca_loss
from lossbench.tasks.base import Prepared, TensorSplit


def overconfident() -> tuple[nn.Module, Prepared]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(600, 4, generator=g)
    # labels depend noisily on x0, the model reads x0 with a huge gain: right most of the time, always ~certain
    y = ((X[:, 0] + 0.8 * torch.randn(600, generator=g)) > 0).long()
    model = nn.Sequential(nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
        model[0].weight[1, 0], model[0].weight[0, 0] = 15.0, -15.0
    parts = [TensorSplit(X[i : i + 200], y[i : i + 200]) for i in (0, 200, 400)]
    return model, Prepared(train=parts[0], val=parts[1], test=parts[2], n_features=4, n_classes=2, kind="binary")


def nll(model: nn.Module, split: TensorSplit) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(split.X), split.y))


def test_temperature_scaling_lowers_nll_and_keeps_argmax() -> None:
    model, prepared = overconfident()
    method = TemperatureScaling()
    calibrated = method.finish(model, prepared)
    assert method.record()["temperature"] > 1.5  # overconfident → softened
    for split in (prepared.val, prepared.test):
        with torch.no_grad():
            assert torch.equal(calibrated(split.X).argmax(1), model(split.X).argmax(1))
    assert nll(calibrated, prepared.val) < nll(model, prepared.val)
    assert nll(calibrated, prepared.test) < nll(model, prepared.test)


@pytest.mark.slow
def test_ca_calibration_lowers_nll_and_keeps_argmax() -> None:
    model, prepared = overconfident()
    method = CACalibration()
    calibrated = method.finish(model, prepared)
    assert method.record()["ca_fallback"] == 0.0
    for split in (prepared.val, prepared.test):
        with torch.no_grad():
            assert torch.equal(calibrated(split.X).argmax(1), model(split.X).argmax(1))
    assert nll(calibrated, prepared.val) < nll(model, prepared.val)
    assert nll(calibrated, prepared.test) < nll(model, prepared.test)


def test_ca_falls_back_when_every_prediction_is_right() -> None:
    model, prepared = overconfident()
    val = prepared.val
    assert val is not None
    with torch.no_grad():
        prepared.val = TensorSplit(val.X, model(val.X).argmax(1))
    method = CACalibration()
    method.finish(model, prepared)
    assert method.record()["ca_fallback"] == 1.0


def test_ca_loss_hand_case() -> None:
    # two rows, one right (conf 0.9) and one wrong (conf 0.8): acc 0.5, weights 0.5 each
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.8, 0.2]]))
    correct = torch.tensor([True, False])
    expected = (0.5 * (0.9 - 1) ** 2 + 0.5 * (0.8 - 0) ** 2) / 1.0
    assert abs(ca_loss(logits, correct).item() - expected) < 1e-6
