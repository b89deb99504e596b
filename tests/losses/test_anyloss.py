"""AnyLoss: hard predictions reproduce 1 - metric; batch counts; degenerate batches stay finite."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, fbeta_score, recall_score

from lossbench.losses import make_loss

Y_TRUE = [1, 1, 1, 0, 0, 0, 0, 1, 0, 0]
Y_PRED = [1, 0, 1, 0, 1, 0, 0, 1, 0, 0]  # TP 3, FN 1, FP 1, TN 5


def hard_logits(pred: list[int], k: int = 2) -> torch.Tensor:
    """Logits whose softmax is (numerically) one-hot at the predicted class, so A(p) is 0 or 1."""
    x = torch.full((len(pred), k), -50.0)
    x[torch.arange(len(pred)), torch.tensor(pred)] = 50.0
    return x


def value(name: str, pred: list[int], true: list[int], k: int = 2, **params: float) -> float:
    return float(make_loss(name, params)(hard_logits(pred, k), torch.tensor(true)))


def test_hard_binary_predictions_give_one_minus_the_metric() -> None:
    tpr = recall_score(Y_TRUE, Y_PRED)
    tnr = recall_score(Y_TRUE, Y_PRED, pos_label=0)
    assert value("anyloss-f1", Y_PRED, Y_TRUE) == pytest.approx(1 - f1_score(Y_TRUE, Y_PRED))
    assert value("anyloss-f1", Y_PRED, Y_TRUE) == pytest.approx(1 - 2 * 3 / (2 * 3 + 1 + 1))
    assert value("anyloss-acc", Y_PRED, Y_TRUE) == pytest.approx(1 - accuracy_score(Y_TRUE, Y_PRED))
    assert value("anyloss-bacc", Y_PRED, Y_TRUE) == pytest.approx(1 - balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert value("anyloss-gmean", Y_PRED, Y_TRUE) == pytest.approx(1 - math.sqrt(tpr * tnr), abs=1e-6)
    for beta in (0.5, 2.0):
        expected = 1 - fbeta_score(Y_TRUE, Y_PRED, beta=beta)
        assert value("anyloss-fbeta", Y_PRED, Y_TRUE, beta=beta) == pytest.approx(expected)


def test_fbeta_at_one_is_f1() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 2, generator=g), torch.randint(0, 2, (20,), generator=g)
    torch.testing.assert_close(make_loss("anyloss-fbeta", {"beta": 1.0})(x, y), make_loss("anyloss-f1")(x, y))


def test_multiclass_is_macro_one_vs_rest() -> None:
    true = [0, 1, 2, 2, 1, 0, 2, 1, 0, 2]
    pred = [0, 2, 2, 2, 1, 1, 0, 1, 0, 2]
    expected = 1 - f1_score(true, pred, average="macro")
    assert value("anyloss-f1", pred, true, k=3) == pytest.approx(expected)


def test_uses_batch_counts() -> None:
    # the same predictions, once alone and once repeated: batch-normalised metrics do not change
    one = value("anyloss-bacc", Y_PRED, Y_TRUE)
    twice = value("anyloss-bacc", Y_PRED * 2, Y_TRUE * 2)
    assert one == pytest.approx(twice)


@pytest.mark.parametrize(
    "name", ["anyloss-acc", "anyloss-f1", "anyloss-fbeta", "anyloss-gmean", "anyloss-bacc"]
)
@pytest.mark.parametrize("label", [0, 1])
def test_finite_without_positives_or_negatives(name: str, label: int) -> None:
    x = torch.randn(8, 2, requires_grad=True)
    out = make_loss(name)(x, torch.full((8,), label))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
    assert 0.0 <= float(out.detach()) <= 1.0


def test_amplifier_is_the_papers() -> None:
    from lossbench.losses.anyloss import amplify

    p = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(amplify(p, 73.0), 1 / (1 + torch.exp(-73.0 * (p - 0.5))))


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["anyloss-acc", "anyloss-f1", "anyloss-fbeta", "anyloss-gmean", "anyloss-bacc"]),
    b=st.integers(1, 12),
    k=st.integers(2, 5),
    scale=st.floats(0.0, 100.0),
    seed=st.integers(0, 10_000),
    L=st.floats(0.5, 100.0),
)
def test_values_lie_in_unit_interval(name: str, b: int, k: int, scale: float, seed: int, L: float) -> None:
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(b, k, generator=g)
    y = torch.randint(0, k, (b,), generator=g)
    out = make_loss(name, {"L": L})(x, y)
    assert out.ndim == 0 and torch.isfinite(out)
    assert -1e-6 <= float(out) <= 1 + 1e-6
