"""Pairing holds with augmentation: the same seed gives every loss the same initial weights and augmented rows."""

from __future__ import annotations

import pytest
import torch

from lossbench.methods import METHODS
from lossbench.methods.base import Batch, Method, StepState
from lossbench.sources import load_dataset
from lossbench.tasks import TASK_TYPES
from lossbench.tasks.image import augment_batch
from lossbench.trial import setup, train_setup

from .helpers import image_spec


def test_draws_depend_on_seed_epoch_and_row_only() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4).repeat(5, 1, 1, 1)
    index = torch.arange(10)
    full = augment_batch(x, index, seed=1, epoch=0, crop=1, flip=True, n_rows=10)
    part = augment_batch(x[[7, 2]], index[[7, 2]], seed=1, epoch=0, crop=1, flip=True, n_rows=10)
    assert torch.equal(full[[7, 2]], part)  # same row, same augmentation, whatever the batch
    assert not torch.equal(full, augment_batch(x, index, seed=1, epoch=1, crop=1, flip=True, n_rows=10))
    assert not torch.equal(full, augment_batch(x, index, seed=2, epoch=0, crop=1, flip=True, n_rows=10))
    assert torch.equal(augment_batch(x, index, 1, 0, crop=0, flip=False, n_rows=10), x)


def test_crop_is_a_shift_with_zero_padding() -> None:
    x = torch.ones(50, 1, 5, 5)
    out = augment_batch(x, torch.arange(50), seed=0, epoch=0, crop=1, flip=False, n_rows=50)
    assert out.shape == x.shape
    sums = out.sum(dim=(1, 2, 3))
    assert set(sums.tolist()) <= {25.0, 20.0, 16.0}  # no shift, one edge or a corner padded


class Spy(Method):
    """Records the inputs each step sees."""

    info = METHODS.get("plain").info

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def step(self, model, batch: Batch, loss, state: StepState):  # type: ignore[no-untyped-def]
        self.seen.append(batch.x.clone())
        return super().step(model, batch, loss, state)


@pytest.mark.slow
def test_every_loss_sees_the_same_weights_and_augmented_batches() -> None:
    task = TASK_TYPES.get("image")
    seen, weights = [], []
    for name in ("ce", "focal"):
        spec = image_spec(name, epochs=1, options={"augment": {"crop": 1, "flip": False}})
        ready = setup(spec)  # as the trial sets itself up
        weights.append({k: v.clone() for k, v in ready.model.state_dict().items()})
        ready.method = spy = Spy()
        train_setup(spec, ready)
        seen.append(spy.seen)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert len(seen[0]) == len(seen[1]) and all(torch.equal(a, b) for a, b in zip(*seen, strict=True))
    plain = task.prepare(load_dataset("images:digits"), image_spec("ce"))
    assert not torch.equal(seen[0][0], plain.train.X[: len(seen[0][0])])  # augmentation did change the rows
