"""Unlearning metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossbench.errors import UserError
from lossbench.metrics import unlearning as um


def test_margin_is_log_odds_of_the_true_class() -> None:
    z = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    y = np.array([0, 1])
    expected = [2 - math.log(2), 1 - math.log(1 + math.exp(3))]
    assert um.margins(z, y) == pytest.approx(expected)
    # equals log p_y − log(1 − p_y)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    py = p[[0, 1], y]
    assert um.margins(z, y) == pytest.approx(np.log(py / (1 - py)))


def test_margins_of_a_stack_of_models() -> None:
    z = np.stack([np.array([[2.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 0.0]])])  # 2 models, 1 row
    assert um.margins(z, np.array([0])) == pytest.approx(np.array([[2 - math.log(2)], [-math.log(2)]]))


def test_margins_refuse_mismatched_labels() -> None:
    with pytest.raises(ValueError, match="do not match"):
        um.margins(np.zeros((3, 2)), np.zeros(2, dtype=int))


def test_accuracy_and_cross_entropy() -> None:
    z = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    y = np.array([0, 1, 1])
    assert um.accuracy(z, y) == pytest.approx(2 / 3)
    assert um.cross_entropy(z, y) == pytest.approx([math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1)),
                                                    math.log(1 + math.exp(3))])
    assert math.isnan(um.accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int)))


def test_mia_auc_hand_value() -> None:
    # members score −loss; pairs (forget, test): (0.1, 0.3) ✓, (0.1, 0.9) ✓, (0.5, 0.3) ✗, (0.5, 0.9) ✓ → 3/4
    assert um.mia_auc(np.array([0.1, 0.5]), np.array([0.3, 0.9])) == pytest.approx(0.75)
    # a tie counts one half; identical distributions give 0.5
    assert um.mia_auc(np.array([0.3]), np.array([0.3])) == pytest.approx(0.5)
    assert um.mia_auc(np.array([1.0, 2.0]), np.array([0.0, 0.5])) == pytest.approx(0.0)  # forget rows look worse
    assert math.isnan(um.mia_auc(np.array([]), np.array([0.3])))


def test_klom_binned_hand_value() -> None:
    # one point; unlearned margins {0, 1}, oracle {0, 0}; 2 bins on [0, 1]: p = (.5, .5), q = (1, 0) floored to
    # (1, 1e-5) and renormalised → KL = .5·log(.5/q0) + .5·log(.5/q1)
    q0, q1 = 1 / (1 + 1e-5), 1e-5 / (1 + 1e-5)
    expected = 0.5 * math.log(0.5 / q0) + 0.5 * math.log(0.5 / q1)
    got = um.klom_binned(np.array([[0.0], [1.0]]), np.array([[0.0], [0.0]]), bins=2)
    assert got == pytest.approx([expected])


def test_klom_binned_zero_for_identical_samples_and_counts_the_largest_value() -> None:
    u = np.array([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]])
    assert um.klom_binned(u, u.copy(), bins=4) == pytest.approx([0.0, 0.0])
    # the largest value sits on the last edge: counted in the last bin, so {0, 2} vs {0, 2} is 0, not a mismatch
    assert um.klom_binned(np.array([[0.0], [2.0]]), np.array([[0.0], [2.0]]), bins=2) == pytest.approx([0.0])


def test_klom_binned_saturates_with_disjoint_samples() -> None:
    got = um.klom_binned(np.array([[10.0]]), np.array([[-10.0]]), bins=20)
    assert got == pytest.approx([-math.log(1e-5 / (1 + 1e-5))])


def test_klom_gaussian_hand_values() -> None:
    # one unlearned model: its spread is the oracle's, so KL = (μ_u − μ_o)²/(2σ_o²); oracle {1, 3}: μ 2, σ² 2
    assert um.klom_gaussian(np.array([[4.0]]), np.array([[1.0], [3.0]])) == pytest.approx([1.0])
    # two Gaussians: u {0, 2} (μ 1, σ² 2), o {0, 4} (μ 2, σ² 8): log 2 + (2 + 1)/16 − 1/2
    got = um.klom_gaussian(np.array([[0.0], [2.0]]), np.array([[0.0], [4.0]]))
    assert got == pytest.approx([math.log(2) + 3 / 16 - 0.5])
    assert um.klom_gaussian(np.array([[0.0], [2.0]]), np.array([[0.0], [2.0]])) == pytest.approx([0.0], abs=1e-12)


def test_klom_gaussian_floors_the_spread() -> None:
    # identical oracles have no spread: the floor (0.25 by default) keeps the value finite
    got = um.klom_gaussian(np.array([[1.0]]), np.array([[0.0], [0.0], [0.0]]))
    assert got == pytest.approx([1.0 / (2 * 0.25**2)])
    with pytest.raises(ValueError, match="two oracle models"):
        um.klom_gaussian(np.array([[1.0]]), np.array([[0.0]]))
    with pytest.raises(ValueError, match="cover"):
        um.klom_gaussian(np.zeros((1, 2)), np.zeros((3, 3)))


def test_klom_summary_is_a_quantile() -> None:
    values = np.arange(101, dtype=float)
    assert um.klom(values) == pytest.approx(95.0)
    assert um.klom(values, 0.5) == pytest.approx(50.0)
    with pytest.raises(UserError):
        um.klom(values, 1.5)
    assert math.isnan(um.klom(np.array([])))


def test_accuracy_gap_and_relative_cost() -> None:
    gap = um.accuracy_gap({"forget": 0.9, "retain": 0.95, "test": 0.8}, {"forget": 0.7, "retain": 0.95, "test": 0.9})
    assert gap == pytest.approx((0.2 + 0.0 + 0.1) / 3)
    assert um.accuracy_gap({"forget": 0.5, "extra": 1.0}, {"forget": 0.25}) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        um.accuracy_gap({"a": 1.0}, {"b": 1.0})
    assert um.relative_cost(2.0, 8.0) == pytest.approx(0.25)
    assert math.isnan(um.relative_cost(2.0, 0.0))
