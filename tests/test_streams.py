"""Named random streams: distinct (seed, purpose) never share draws; the same (seed, purpose) pairs every loss."""

from __future__ import annotations

import itertools

import pytest
import torch

from lossbench import streams
from lossbench.runner import expand
from lossbench.suite import Suite
from lossbench.train import batch_order, step_state
from lossbench.trial import setup


def draws(seed: int, purpose: str, *keys: int | str) -> tuple[int, ...]:
    return tuple(streams.rng(seed, purpose, *keys).integers(0, 2**62, size=4).tolist())


def test_every_seed_and_purpose_has_its_own_stream() -> None:
    keys = [(seed, purpose) for seed in (*range(12), 1_000_003, 2**40) for purpose in streams.PURPOSES]
    assert len({draws(seed, purpose) for seed, purpose in keys}) == len(keys)
    assert len({streams.seed_of(seed, purpose) for seed, purpose in keys}) == len(keys)


def test_keys_within_a_purpose_are_streams_of_their_own() -> None:
    epochs = [draws(3, "batch_order", epoch) for epoch in range(50)]
    assert len(set(epochs)) == 50 and draws(3, "batch_order") not in epochs
    assert draws(3, "split", "test") != draws(3, "split", "val")
    assert draws(3, "batch_order", 0) != draws(3, "augment", 0)


def test_seed_s_does_not_draw_what_seed_s_plus_1_draws_for_another_purpose() -> None:
    # the earlier scheme drew seed s's dropout from manual_seed(s + 1): seed s + 1's initial weights
    for s, (a, b) in itertools.product(range(5), itertools.permutations(streams.PURPOSES, 2)):
        assert streams.seed_of(s, a) != streams.seed_of(s + 1, b)


def test_the_same_seed_and_purpose_give_the_same_draws() -> None:
    assert draws(7, "noise") == draws(7, "noise")
    assert torch.equal(torch.rand(5, generator=streams.generator(7, "method")),
                       torch.rand(5, generator=streams.generator(7, "method")))
    streams.seed_torch(7, "init")
    first = torch.rand(3)
    streams.seed_torch(7, "init")
    assert torch.equal(first, torch.rand(3))
    assert 0 <= streams.seed_of(7, "split", bits=32) < 2**32


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown random stream"):
        streams.rng(0, "dropuot")


def test_batch_order_and_method_draws_come_from_their_streams() -> None:
    g = streams.generator(4, "batch_order", 2)
    assert torch.equal(batch_order(100, 4, 2), torch.randperm(100, generator=g))
    method = step_state(4).generator
    assert method is not None
    assert torch.equal(torch.rand(3, generator=method), torch.rand(3, generator=streams.generator(4, "method")))


def test_every_loss_of_a_seed_starts_training_from_the_same_random_state(tiny_suite: Suite) -> None:
    trials, _ = expand(tiny_suite, losses=["ce", "focal", "anyloss-f1", "rankmixup-mrl"], seeds=[2])
    states = [setup(t).rng_state for t in trials]
    assert all(torch.equal(states[0], s) for s in states[1:])
    other, _ = expand(tiny_suite, losses=["ce"], seeds=[3])
    assert not torch.equal(states[0], setup(other[0]).rng_state)


def test_no_seed_draws_its_dropout_from_the_next_seeds_initial_weights(tiny_suite: Suite) -> None:
    # the earlier scheme: weights from manual_seed(s), dropout from manual_seed(s + 1), the next seed's weights
    (first,), _ = expand(tiny_suite, losses=["ce"], seeds=[0])
    (second,), _ = expand(tiny_suite, losses=["ce"], seeds=[1])
    dropout_of_first, next_seed = setup(first).rng_state, setup(second)
    torch.set_rng_state(dropout_of_first)
    rebuilt = next_seed.task.build_model(next_seed.prepared, second)
    weights = next_seed.model.state_dict()
    assert not all(torch.equal(v, weights[k]) for k, v in rebuilt.state_dict().items())
