"""KL-DRO instance re-weighting around a base loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossbench.errors import SpecError
from lossbench.losses import make_loss
from lossbench.objectives import parse_objective


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(10, 3, generator=g), torch.randint(0, 3, (10,), generator=g)


def test_hand_value() -> None:
    # two samples with CE losses l = (log 2, log 2 + log 2): r (logsumexp(l / r) - log 2)
    x = torch.tensor([[0.0, 0.0], [0.0, math.log(1 / 3)]])
    y = torch.tensor([0, 1])
    l0, l1 = math.log(2.0), math.log(4.0)
    r = 0.5
    expected = r * (math.log(math.exp(l0 / r) + math.exp(l1 / r)) - math.log(2))
    assert float(make_loss("dro-kl", {"r": r})(x, y)) == pytest.approx(expected)


def test_limits_mean_and_max() -> None:
    x, y = batch()
    ce = F.cross_entropy(x, y, reduction="none")
    torch.testing.assert_close(make_loss("dro-kl", {"r": 1e4})(x, y), ce.mean(), atol=1e-3, rtol=0)
    assert float(make_loss("dro-kl", {"r": 1e-3})(x, y)) == pytest.approx(float(ce.max()), abs=0.01)


def test_gradient_is_softmax_weighted() -> None:
    x, y = batch(1)
    x.requires_grad_(True)
    make_loss("dro-kl", {"r": 2.0})(x, y).backward()
    x2 = x.detach().clone().requires_grad_(True)
    ce = F.cross_entropy(x2, y, reduction="none")
    w = torch.softmax(ce.detach() / 2.0, 0)
    (w * ce).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_wraps_any_per_sample_loss_and_passes_context() -> None:
    x, y = batch(2)
    focal = make_loss("dro-kl", {"base": "focal"})
    assert focal.base_loss.info.name == "focal"
    ldam = make_loss("dro-kl", {"base": "ldam"}, class_counts=[5, 3, 1], seed=3)
    assert ldam.needs == {"class_counts", "epoch"}
    assert torch.isfinite(ldam(x, y, epoch=0))
    assert str(parse_objective("dro-kl:base=focal")) == "dro-kl:base=focal"
    parse_objective("dro-kl:base=aldr-kl")  # validated without building the base, which needs n_samples


def test_refuses_unknown_and_batch_level_bases() -> None:
    with pytest.raises(SpecError, match="unknown"):
        make_loss("dro-kl", {"base": "nope"})
    with pytest.raises(SpecError, match="per-sample"):
        make_loss("dro-kl", {"base": "anyloss-f1"})
