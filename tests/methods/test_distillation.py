"""BinaryKLNorm (DHKD) on hand cases."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.methods.distillation import binary_kl_norm


def test_zero_at_equal_logits() -> None:
    s = torch.randn(5, 4)
    assert binary_kl_norm(s, s.clone()).item() == pytest.approx(0.0, abs=1e-7)


@settings(max_examples=50, deadline=None)
@given(st.floats(-20, 20), st.floats(-20, 20))
def test_positive_elsewhere(s: float, t: float) -> None:
    value = binary_kl_norm(torch.tensor([[s]]), torch.tensor([[t]])).item()
    if abs(s - t) > 1e-3:
        assert value > 0
    else:
        assert value >= -1e-7


def test_hand_value() -> None:
    # one logit, s − t = 2, T = 2: d = σ(1); T²·KL(Bern(.5) ‖ Bern(d)) = 4·(0.5·log(0.5/d) + 0.5·log(0.5/(1 − d)))
    d = 1 / (1 + math.exp(-1))
    expected = 4 * (0.5 * math.log(0.5 / d) + 0.5 * math.log(0.5 / (1 - d)))
    assert binary_kl_norm(torch.tensor([[3.0]]), torch.tensor([[1.0]])).item() == pytest.approx(expected, rel=1e-6)
    # summed over classes, averaged over rows
    two = binary_kl_norm(torch.tensor([[3.0, 3.0], [1.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])).item()
    assert two == pytest.approx(expected, rel=1e-6)
