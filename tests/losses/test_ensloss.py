"""EnsLoss: seeded, rank-assigned, calibrated random derivatives."""

from __future__ import annotations

import pytest
import torch

from lossbench.errors import LossInputError
from lossbench.losses import make_loss


def batch(seed: int = 0, b: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(b, 2, generator=g), torch.randint(0, 2, (b,), generator=g)


def test_same_seed_same_value_different_seed_different() -> None:
    x, y = batch()
    a = make_loss("ensloss", seed=1)(x, y)
    b = make_loss("ensloss", seed=1)(x, y)
    c = make_loss("ensloss", seed=2)(x, y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_generator_advances_between_batches() -> None:
    x, y = batch()
    loss = make_loss("ensloss", seed=1)
    assert not torch.equal(loss(x, y), loss(x, y))


def test_derivatives_are_negative_monotone_and_clipped() -> None:
    x, y = batch(3, 64)
    x.requires_grad_(True)
    make_loss("ensloss", {"reduction": "sum"}, seed=0)(x, y).backward()
    sign = 2 * y.float() - 1
    margin = (sign * (x[:, 1] - x[:, 0])).detach()
    # d loss / d margin = g: recover it from the gradient of z_1 (d margin / d z_1 = sign)
    g = x.grad[:, 1] * sign
    assert (g < 0).all() and (g >= -1 - 1e-6).all()
    # before the tail rescaling, smaller margins get more negative derivatives (convexity)
    raw = torch.where(margin > 1, g * margin, g)
    order = margin.argsort()
    assert (raw[order].diff() >= -1e-5).all()


def test_matches_the_reference_algorithm_on_a_small_batch() -> None:
    # reference steps written out: sorted clipped -exp(N(0,1)) draws, rank-matched to the margins
    x = torch.tensor([[0.0, 2.0], [0.0, -1.0], [0.0, 0.5], [0.0, 3.0]])
    y = torch.tensor([1, 1, 0, 0])
    margins = torch.tensor([2.0, -1.0, -0.5, -3.0])
    draws = make_loss("ensloss", seed=5).draw_derivatives(4).float()  # same seed, same draws
    assert (draws.diff() >= 0).all()
    deriv = torch.empty(4)
    deriv[margins.argsort()] = draws
    deriv = torch.where(margins > 1, deriv / margins, deriv) - 1e-6
    expected = (deriv * margins).mean()
    torch.testing.assert_close(make_loss("ensloss", seed=5)(x, y), expected)


def test_binary_only() -> None:
    with pytest.raises(LossInputError, match="binary"):
        make_loss("ensloss", seed=0)(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))


def test_sorted_draws_are_sorted_standard_normals() -> None:
    from scipy import stats

    loss = make_loss("ensloss", seed=0)
    eps = loss.sorted_normals(20_000)
    assert (eps.diff() >= 0).all()
    assert stats.kstest(eps.numpy(), "norm").pvalue > 1e-3
    # every batch gets fresh draws
    assert not torch.equal(loss.sorted_normals(50), loss.sorted_normals(50))


def test_derivatives_follow_box_cox() -> None:
    loss = make_loss("ensloss", {"lam": 0.5}, seed=0)
    d = loss.draw_derivatives(1000)
    assert (d.diff() >= 0).all() and (d >= -1).all() and (d <= 0).all()
