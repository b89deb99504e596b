"""The LDR paper's noise protocol: uniform and pair-swap noise on training and validation labels, test clean."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from lossbench.errors import DataError, SuiteError
from lossbench.models.mlp import MLP, ffnn
from lossbench.objectives import parse_objective
from lossbench.sources import load_dataset
from lossbench.sources.base import Dataset
from lossbench.specs import TrialSpec
from lossbench.suite import parse_suite, trial_config
from lossbench.tasks.classification import TabularClassification
from lossbench.tasks.label_noise import LabelNoise, inject_label_noise, swap_table
from lossbench.vectorized import StackedMLP

TASK = TabularClassification()
LETTERS = [chr(ord("A") + i) for i in range(26)]
# the LDR reference code's classDep_letter pairs
LETTER_PAIRS = (("B", "D"), ("C", "G"), ("E", "F"), ("H", "N"), ("I", "L"), ("K", "X"), ("M", "W"), ("O", "Q"),
                ("P", "R"), ("U", "V"))


@pytest.mark.parametrize(("k", "level"), [(4, 0.3), (11, 0.6), (26, 0.9)])
def test_uniform_noise_changes_level_times_k_minus_1_over_k(k: int, level: float) -> None:
    y = np.random.default_rng(0).integers(0, k, size=40000)
    noisy, changed = inject_label_noise(y, k, LabelNoise("uniform", level), seed=3, count="per-row")
    expected = level * (k - 1) / k
    assert abs(changed.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / len(y))
    assert np.array_equal(changed, noisy != y)
    # a changed label goes to each other class equally often
    offsets = np.bincount((noisy[changed] - y[changed]) % k, minlength=k)[1:]
    assert offsets.min() > 0.85 * offsets.mean()


def test_swap_noise_exchanges_the_named_pairs_only() -> None:
    y = np.random.default_rng(1).integers(0, 26, size=52000)
    table = swap_table(LETTER_PAIRS, LETTERS, "letter")
    noisy, changed = inject_label_noise(y, 26, LabelNoise("swap", 0.3, LETTER_PAIRS), seed=0, count="per-row",
                                        swaps=table)
    partner = {LETTERS.index(a): LETTERS.index(b) for p in LETTER_PAIRS for a, b in (p, p[::-1])}
    assert all(noisy[i] == partner[y[i]] for i in np.flatnonzero(changed))
    assert not changed[~np.isin(y, list(partner))].any()  # unpaired letters (A, J, S, ...) keep their label
    # the stated rate among paired rows: 20 of 26 letters are paired, so 0.3 * 20/26 of all labels change
    assert abs(changed[np.isin(y, list(partner))].mean() - 0.3) < 0.01
    assert abs(changed.mean() - 0.3 * 20 / 26) < 0.01


def test_swap_table_refuses_pairs_that_do_not_fit_the_data() -> None:
    with pytest.raises(ValueError, match="names one class"):
        swap_table((("B", "hid"),), LETTERS, "letter")
    with pytest.raises(ValueError, match="no swap pair"):
        swap_table((("hid", "hId"),), LETTERS, "letter")
    # pairs of another dataset of the suite are not used
    assert swap_table((("hid", "hId"), ("A", "B")), LETTERS, "letter")[:3].tolist() == [1, 0, 2]


def spec(ds: Dataset, loss: str, seed: int, noise: dict[str, Any]) -> TrialSpec:
    config = {"model": {"family": "ffnn"}, "training": {"epochs": 1}, "split": {"test": 0.25, "val": 0.25},
              "options": {"noise": noise}}
    return TrialSpec("t", "1", "classification", ds.uri, ds.content_hash, parse_objective(loss), seed,
                     trial_config("classification", config), ("accuracy",), "accuracy")


@pytest.mark.parametrize("noise", [{"type": "uniform", "rate": 0.6, "val": True},
                                   {"type": "swap", "rate": 0.5, "val": True, "pairs": [["0", "1"], ["2", "3"]]}])
def test_train_and_validation_noisy_test_clean_same_for_every_loss(noise: dict[str, Any]) -> None:
    ds = load_dataset("synthetic:classification#n=4000&classes=5&minority=0.2&seed=2")
    clean = TASK.prepare(ds, spec(ds, "ce", 4, {"type": "uniform", "rate": 0.0}))
    runs = [TASK.prepare(ds, spec(ds, loss, 4, noise)) for loss in ("ce", "aldr-kl", "comp-sum:tau=1.5")]
    for other in runs[1:]:
        assert torch.equal(runs[0].train.y, other.train.y) and torch.equal(runs[0].val.y, other.val.y)
    noisy = runs[0]
    assert torch.equal(noisy.test.y, clean.test.y)
    if noise["type"] == "uniform":
        expected = {"train": 0.6 * 4 / 5, "val": 0.6 * 4 / 5}
    else:  # classes 0..3 are paired, class 4 is not
        expected = {part: 0.5 * float(np.isin(getattr(clean, part).y.numpy(), [0, 1, 2, 3]).mean())
                    for part in ("train", "val")}
    for part in ("train", "val"):
        share = float((getattr(noisy, part).y != getattr(clean, part).y).float().mean())
        assert abs(share - expected[part]) < 0.05, part
    assert noisy.info["record"]["noise_realised"] == pytest.approx(
        float((noisy.train.y != clean.train.y).float().mean()))
    # the validation labels draw from their own stream, not a copy of the training draws
    assert not torch.equal(noisy.val.y[:50] != clean.val.y[:50], noisy.train.y[:50] != clean.train.y[:50])


def test_swap_pairs_that_fit_no_class_of_the_data_are_a_data_error() -> None:
    ds = load_dataset("synthetic:classification#n=400&classes=3&seed=2")
    with pytest.raises(DataError, match=r"noise\.pairs"):
        TASK.prepare(ds, spec(ds, "ce", 0, {"type": "swap", "rate": 0.3, "pairs": [["x", "y"]]}))


def test_the_image_task_refuses_swap_noise() -> None:
    with pytest.raises(SuiteError, match="tabular-only"):
        parse_suite({"name": "s", "version": "1", "task": "image", "datasets": ["sklearn:digits"],
                     "losses": ["ce"], "primary_metric": "accuracy",
                     "options": {"noise": {"type": "swap", "rate": 0.3, "pairs": [["0", "1"]]}}})


def test_ffnn_is_the_papers_model() -> None:
    torch.manual_seed(0)
    model = ffnn(300, 200)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(300, 200), (200, 200), (200, 200)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in model) == 2
    for m in linears:  # Xavier-normal: std sqrt(2 / (fan_in + fan_out))
        assert float(m.weight.detach().std()) == pytest.approx((2 / (m.in_features + m.out_features)) ** 0.5, rel=0.03)
    assert [m.out_features for m in ffnn(16, 26) if isinstance(m, torch.nn.Linear)] == [16, 16, 26]


def test_stacked_tanh_models_compute_what_each_model_does() -> None:
    torch.manual_seed(0)
    models = [ffnn(10, 11), ffnn(10, 11)]
    x = torch.randn(2, 7, 10)
    stacked = StackedMLP(models).eval()
    for s, m in enumerate(models):
        assert isinstance(m, MLP)
        torch.testing.assert_close(stacked(x)[s], m(x[s]))
