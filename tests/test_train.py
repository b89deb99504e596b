"""The training loop's shared pieces: early stopping with a warm-up, the batch rule for every member."""

from __future__ import annotations

import math

import torch

from lossbench.train import EarlyStopping, batches


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience() -> None:
    stop = EarlyStopping(patience=2, greater_is_better=True)
    decisions = [stop.update(e, score, lambda e=e: f"weights {e}") for e, score in enumerate([0.5, 0.7, 0.6, 0.7])]
    assert decisions == [False, False, False, True]  # 0.7 again is no improvement
    assert (stop.best_epoch, stop.checkpoint) == (1, "weights 1")


def test_early_stopping_minimises_a_lower_is_better_metric_and_ignores_nan() -> None:
    stop = EarlyStopping(patience=0, greater_is_better=False)
    for e, score in enumerate([0.3, math.nan, 0.1, 0.2]):
        assert not stop.update(e, score, lambda e=e: e)  # patience 0 never stops
    assert stop.best_epoch == 2


def test_no_checkpoint_and_no_patience_before_a_losss_warm_up_ends() -> None:
    stop = EarlyStopping(patience=1, greater_is_better=True, first_epoch=3)
    assert not any(stop.update(e, 1.0 - e / 10, lambda: "early") for e in range(3))
    assert stop.best_epoch is None and stop.checkpoint is None
    assert not stop.update(3, 0.1, lambda: "first")
    assert stop.best_epoch == 3 and stop.update(4, 0.0, lambda: "worse")


def test_batches_slice_every_member_alike_and_skip_a_trailing_row() -> None:
    orders = torch.stack([torch.randperm(11, generator=torch.Generator().manual_seed(s)) for s in range(3)])
    chunks = list(batches(orders, 5))
    assert [c.shape for c in chunks] == [(3, 5), (3, 5)]  # the 11th row would be a 1-row batch
    assert torch.equal(torch.cat(chunks, 1), orders[:, :10])
    assert [c.shape for c in batches(orders[:, :1], 5)] == [(3, 1)]  # a 1-row split still trains
