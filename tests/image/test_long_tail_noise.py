"""The CIFAR-LT profile on the training split, and the shared label-noise injection."""

from __future__ import annotations

import numpy as np
import pytest

from lossbench.sources import load_dataset
from lossbench.tasks import TASK_TYPES
from lossbench.tasks.label_noise import LabelNoise, inject_label_noise, long_tail_counts, long_tail_indices

from .helpers import image_spec


def test_profile_matches_the_recipe() -> None:
    # n_i = int(n_max * IF^(-i/(K-1))): the digits counts at IF 100 quoted for the CIFAR-LT recipe
    assert long_tail_counts(178, 10, 100) == [178, 106, 63, 38, 22, 13, 8, 4, 2, 1]
    assert long_tail_counts(500, 10, 10)[::9] == [500, 50]
    assert long_tail_counts(7, 3, 1) == [7, 7, 7]


def test_indices_follow_the_profile_and_the_seed() -> None:
    y = np.repeat(np.arange(5), 40)
    idx = long_tail_indices(y, 5, 10, seed=1)
    assert np.bincount(y[idx], minlength=5).tolist() == long_tail_counts(40, 5, 10)
    assert np.array_equal(idx, long_tail_indices(y, 5, 10, seed=1))
    assert not np.array_equal(idx, long_tail_indices(y, 5, 10, seed=2))


@pytest.mark.parametrize("imbalance", [10, 100])
def test_task_makes_the_training_split_long_tailed_and_keeps_test_balanced(imbalance: int) -> None:
    spec = image_spec("ce", f"images:digits#imbalance={imbalance}")
    prepared = TASK_TYPES.get("image").prepare(load_dataset(spec.dataset), spec)
    balanced = TASK_TYPES.get("image").prepare(load_dataset("images:digits"), image_spec("ce"))
    n_max = min(balanced.class_counts)  # the smallest class sets n_max, so every target is met
    assert prepared.class_counts == long_tail_counts(n_max, 10, imbalance)
    test_counts = np.bincount(prepared.test.y.numpy(), minlength=10)
    assert test_counts.max() - test_counts.min() <= 3  # the stratified test split of balanced digits
    assert np.array_equal(prepared.test.y.numpy(), balanced.test.y.numpy())


def test_noise_rate_is_exact_and_symmetric_noise_never_keeps_the_label() -> None:
    y = np.repeat(np.arange(4), 50)
    noisy, flipped = inject_label_noise(y, 4, LabelNoise("symmetric", 0.3), seed=0)
    assert flipped.sum() == 60 and (noisy != y).sum() == 60
    assert np.array_equal(noisy[~flipped], y[~flipped])
    pair, pflip = inject_label_noise(y, 4, LabelNoise("pair", 0.2), seed=0)
    assert pflip.sum() == 40 and np.array_equal(pair[pflip], (y[pflip] + 1) % 4)
    again, _ = inject_label_noise(y, 4, LabelNoise("symmetric", 0.3), seed=0)
    assert np.array_equal(noisy, again)


def test_task_noise_option_touches_training_labels_only() -> None:
    clean = TASK_TYPES.get("image").prepare(load_dataset("images:digits"), image_spec("ce"))
    spec = image_spec("ce", options={"noise": {"type": "symmetric", "rate": 0.4}})
    noisy = TASK_TYPES.get("image").prepare(load_dataset("images:digits"), spec)
    share = (noisy.train.y != clean.train.y).float().mean().item()
    assert 0.3 < share < 0.5 and noisy.info["n_noisy"] > 0
    assert np.array_equal(noisy.test.y.numpy(), clean.test.y.numpy())


def test_bad_options_are_refused() -> None:
    from lossbench.errors import SuiteError
    from lossbench.suite import parse_suite

    base = {"name": "x", "version": "1", "task": "image", "datasets": ["images:digits"], "losses": ["ce"],
            "primary_metric": "accuracy", "model": {"family": "cnn"}}
    for options, key in (({"noise": {"type": "odd", "rate": 0.1}}, "noise"), ({"augment": {"crop": -1}}, "augment"),
                         ({"colour": 1}, "colour")):
        with pytest.raises(SuiteError, match=f"options.{key}"):
            parse_suite({**base, "options": options})
