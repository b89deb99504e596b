"""LDR-KL and ALDR-KL against closed forms and a hand-written transcription of the reference code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossbench.errors import LossInputError, SpecError
from lossbench.losses import make_loss


def batch(seed: int = 0, b: int = 12, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(b, k, generator=g), torch.randint(0, k, (b,), generator=g)


def test_ldr_without_margin_at_lambda_one_is_ce_minus_log_k() -> None:
    x, y = batch()
    got = make_loss("ldr-kl", {"lambda": 1.0, "margin": 0.0})(x, y)
    torch.testing.assert_close(got, F.cross_entropy(x, y) - math.log(4))


def test_ldr_hand_value() -> None:
    # z = (0, log 3), y = 1, c = 1, lambda = 1: gaps (1 - log 3, 0)
    want = math.log((math.e / 3 + 1) / 2)
    for dtype, rel in ((torch.float32, 1e-5), (torch.float64, 1e-12)):  # float32 carries ~1e-7 relative error
        x = torch.tensor([[0.0, math.log(3.0)]], dtype=dtype)
        got = float(make_loss("ldr-kl", {"lambda": 1.0, "margin": 1.0})(x, torch.tensor([1])))
        assert got == pytest.approx(want, rel=rel)


def test_ldr_limits() -> None:
    x, y = batch(1)
    gaps = x - x.gather(1, y[:, None]) + 0.5
    gaps = gaps.scatter(1, y[:, None], 0.0)
    small = make_loss("ldr-kl", {"lambda": 1e-3, "margin": 0.5, "reduction": "none"})(x, y)
    large = make_loss("ldr-kl", {"lambda": 1e4, "margin": 0.5, "reduction": "none"})(x, y)
    torch.testing.assert_close(small, gaps.max(1).values, atol=2e-3, rtol=0)  # Crammer-Singer hinge
    torch.testing.assert_close(large, gaps.mean(1), atol=1e-3, rtol=0)


def test_ldr_normalize_matches_reference_formula() -> None:
    # LDRLoss_V1 transcribed: softplus, divide by the row mean,
    # then lambda * log mean exp((c(1-e_y) + f - f_y)/lambda)
    x, y = batch(2)
    lam, c = 2.0, 0.3
    f = F.softplus(x)
    f = f / f.mean(1, keepdim=True)
    onehot = F.one_hot(y, 4).float()
    d = (c * (1 - onehot) + f - (f * onehot).sum(1, keepdim=True)) / lam
    expected = (lam * torch.log(torch.exp(d).mean(1))).mean()
    got = make_loss("ldr-kl", {"lambda": lam, "margin": c, "normalize": True})(x, y)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", ["ldr-kl", "aldr-kl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalize_is_finite_when_softplus_underflows(name: str, dtype: torch.dtype) -> None:
    # row 0: softplus(-1e4) is 0 for every class, so the reference's mean is 0 and f / mean is 0/0
    x = torch.tensor([[-1e4, -1e4, -1e4], [0.5, -0.2, 0.1]], dtype=dtype, requires_grad=True)
    y = torch.tensor([0, 2])
    loss = make_loss(name, {"normalize": True, "reduction": "none"}, n_samples=2, class_counts=[1, 1, 1])
    extras = {"sample_index": torch.arange(2)} if name == "aldr-kl" else {}
    out = loss(x, y, **extras)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    if name == "ldr-kl":  # f = 0: every gap is the margin alone, lambda log mean_k exp(c 1[k != y] / lambda)
        expected = 10.0 * math.log((1 + 2 * math.exp(0.1 / 10.0)) / 3)
        assert float(out.detach()[0]) == pytest.approx(expected, rel=1e-5 if dtype == torch.float32 else 1e-12)
        assert torch.equal(x.grad[0], torch.zeros(3, dtype=dtype))


def aldr_reference(
    x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, lambda0: float, alpha: float, c: float
):
    """ALDRLoss_V1 transcribed (without normalisation): returns per-sample losses and the new temperatures."""
    k = x.shape[1]
    p = torch.softmax(x / lam[:, None], 1) + 1e-5
    p = p / p.sum(1, keepdim=True)
    kl = (p * torch.log(k * p)).sum(1)
    new = lambda0 - lambda0 * kl / (alpha * math.log(k))
    extra = -0.5 * alpha * math.log(k) / lambda0 * (new - lambda0) ** 2
    onehot = F.one_hot(y, k).float()
    d = c * (1 - onehot) + x - (x * onehot).sum(1, keepdim=True)
    return new * torch.log(torch.exp(d / new[:, None]).mean(1)) + extra, new


def test_aldr_matches_reference_and_updates_only_indexed_samples() -> None:
    x, y = batch(3, b=3)
    loss = make_loss(
        "aldr-kl", {"lambda0": 2.0, "alpha": 1.5, "margin": 0.2, "reduction": "none"}, n_samples=10
    )
    index = torch.tensor([2, 5, 7])
    got = loss(x, y, sample_index=index)
    expected, new = aldr_reference(x, y, torch.full((3,), 2.0), 2.0, 1.5, 0.2)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(loss.lambdas[index], new)
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(loss.lambdas[untouched], torch.full((7,), 2.0))
    # a second visit starts from the stored temperatures
    again, newer = aldr_reference(x, y, new, 2.0, 1.5, 0.2)
    torch.testing.assert_close(loss(x, y, sample_index=index), again)
    torch.testing.assert_close(loss.lambdas[index], newer)


def test_aldr_temperatures_stay_positive() -> None:
    x = torch.tensor([[50.0, -50.0, -50.0]])
    loss = make_loss("aldr-kl", {"alpha": 1.01}, n_samples=1)
    for _ in range(5):
        loss(x, torch.tensor([0]), sample_index=torch.tensor([0]))
    assert float(loss.lambdas.min()) > 0


def test_aldr_declares_and_requires_its_needs() -> None:
    with pytest.raises(SpecError, match="n_samples"):
        make_loss("aldr-kl")
    loss = make_loss("aldr-kl", n_samples=4)
    with pytest.raises(LossInputError, match="sample_index"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(LossInputError, match="outside"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]), sample_index=torch.tensor([0, 9]))
    with pytest.raises(SpecError, match="alpha"):
        make_loss("aldr-kl", {"alpha": 1.0}, n_samples=4)
