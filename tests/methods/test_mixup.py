"""RankMixup terms on hand cases."""

from __future__ import annotations

import math

import pytest
import torch

from lossbench.methods.mixup import mixed_is_soft, mixup_batch, mndcg_term, mrl_term


def test_mrl_zero_when_margins_are_satisfied() -> None:
    logits = torch.tensor([[5.0, 0.0], [0.0, 4.0]])
    mixed = torch.tensor([[2.0, 1.0], [1.0, 2.5]])  # max logits 2.0 and 2.5: below raw (5, 4) by ≥ 1.5
    mask = torch.ones(2)
    assert mrl_term(logits, mixed, mask, margin=1.5).item() == 0.0
    # one margin short by 0.5 on row 0: relu(2 − 5 + 3.5) = 0.5, row 1: relu(2.5 − 4 + 3.5) = 2, mean 1.25
    assert mrl_term(logits, mixed, mask, margin=3.5).item() == pytest.approx(1.25)


def test_mrl_zero_when_all_pairs_share_a_class() -> None:
    y = torch.tensor([1, 1, 1, 1])
    mask = mixed_is_soft(y, y[torch.tensor([3, 2, 1, 0])], lam=0.3)
    assert mask.sum().item() == 0
    logits, mixed = torch.zeros(4, 2), torch.full((4, 2), 10.0)  # mixed far more confident: would be penalised
    assert mrl_term(logits, mixed, mask, margin=1.0).item() == 0.0
    assert mixed_is_soft(torch.tensor([0, 1]), torch.tensor([1, 0]), lam=1.0).sum().item() == 0  # λ = 1: one-hot


def test_mrl_probability_version() -> None:
    logits = torch.tensor([[2.0, 0.0]])
    mixed = torch.tensor([[0.0, 0.0]])
    conf, conf_mix = torch.softmax(logits, 1).max().item(), 0.5
    value = mrl_term(logits, mixed, torch.ones(1), margin=0.1, use_prob=True).item()
    assert value == pytest.approx(max(conf_mix - conf + 0.1, 0.0))


def test_mndcg_equals_one_minus_ndcg_on_a_hand_case() -> None:
    conf = torch.tensor([0.9])
    conf_mix = torch.tensor([[0.6, 0.7]])
    relevance = torch.tensor([[0.8, 0.6]])
    # ordered by relevance: raw (1, 0.9), then (0.8, 0.6), then (0.6, 0.7); discounts log2(2), log2(3), log2(4)
    dcg = 0.9 / 1 + 0.6 / math.log2(3) + 0.7 / 2
    idcg = 1.0 / 1 + 0.8 / math.log2(3) + 0.6 / 2
    assert idcg > dcg
    assert mndcg_term(conf, conf_mix, relevance).item() == pytest.approx(1 - dcg / idcg, rel=1e-6)
    # the reference flips the ratio when DCG exceeds IDCG, so the term stays in [0, 1]
    over = mndcg_term(torch.tensor([1.0]), torch.tensor([[1.0, 1.0]]), torch.tensor([[0.5, 0.5]])).item()
    d2, i2 = 1 + 1 / math.log2(3) + 1 / 2, 1 + 0.5 / math.log2(3) + 0.5 / 2
    assert over == pytest.approx(1 - i2 / d2, rel=1e-6)


def test_mixup_batch_is_seeded_by_the_generator() -> None:
    x, y = torch.randn(8, 3), torch.arange(8) % 2
    a = mixup_batch(x, y, 1.0, torch.Generator().manual_seed(1))
    b = mixup_batch(x, y, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and a[2] == b[2] and torch.equal(a[3], b[3])
    x_mix, _, lam, perm = a
    assert torch.allclose(x_mix, lam * x + (1 - lam) * x[perm])
