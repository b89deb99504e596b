"""Label-Agnostic Forgetting: its two losses by hand, the VAE fit, and what it may touch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lossbench.errors import UserError
from lossbench.unlearning import make_objective
from lossbench.unlearning.laf import (
    RepresentationVAE,
    alignment_loss,
    extractor_unlearning_loss,
    fit_vae,
    vae_loss,
)
from lossbench.unlearning.loop import make_data, unlearn
from lossbench.unlearning.objectives import rows
from tests.unlearning.helpers import copy_model, data_for, problem


def test_vae_loss_hand_value() -> None:
    e = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    recon = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # squared errors 4 and 1: Σ/B = 2.5
    mu = torch.zeros(2, 1)
    sigma = torch.ones(2, 1)  # KL(N(0,1) ‖ N(0,1)) = 0 (up to the 1e-8 in the log)
    assert vae_loss(recon, e, mu, sigma).item() == pytest.approx(2.5, abs=1e-6)
    # μ = 1, σ = 1 on one row: KL = ½·μ² = 0.5, weighted 0.025, over B = 2
    assert vae_loss(e, e, torch.tensor([[1.0], [0.0]]), sigma).item() == pytest.approx(0.025 * 0.5 / 2, abs=1e-6)


def test_extractor_unlearning_loss_hand_value() -> None:
    # retain row reconstructed exactly (exp 0 = 1), forget row with error 1 (exp(1/2)) → 1 − e^{1/2}
    assert extractor_unlearning_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(
        1 - math.exp(0.5), rel=1e-6)
    # each term lies in [1, e): the loss is bounded, unlike gradient ascent
    big = extractor_unlearning_loss(torch.tensor([1e9]), torch.tensor([0.0])).item()
    assert big == pytest.approx(math.e - 1, rel=1e-6)


def test_alignment_loss_hand_value() -> None:
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    opposite = -e
    # retain aligned (c_s = 0), forget opposite (c_u = 2 each): Σ_s [0 − log(2·e^{2/τ})]
    tau = 5.0
    got = alignment_loss(e, e, e, opposite, tau).item()
    assert got == pytest.approx(-2 * math.log(2 * math.exp(2 / tau)), rel=1e-6)
    # orthogonal retain rows cost c_s = 1 each
    got = alignment_loss(e, e.flip(1), e, e, tau).item()
    assert got == pytest.approx(2 * 1 - 2 * math.log(2), rel=1e-6)


def test_vae_fit_lowers_its_loss_and_is_frozen_after() -> None:
    g = torch.Generator().manual_seed(0)
    e = torch.relu(torch.randn(300, 4, generator=g) @ torch.randn(4, 64, generator=g))  # ReLU features, rank 4
    vae = RepresentationVAE(64, 8, g)

    def loss() -> float:
        with torch.no_grad():
            recon, mu, sigma = vae(e, torch.Generator().manual_seed(1))
            return vae_loss(recon, e, mu, sigma).item()

    before = loss()
    fit_vae(vae, e, g, epochs=10)  # the reference's 10 epochs
    assert loss() < 0.75 * before
    assert not any(p.requires_grad for p in vae.parameters())


def test_vae_initialisation_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    RepresentationVAE(16, 4, torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), expected)


def test_laf_changes_the_extractor_and_leaves_the_head() -> None:
    model, forget, retain = problem()
    before = copy_model(model)
    unlearn(model, make_objective("laf"), data_for(model, forget, retain, budget=3), batch_size=8)
    assert torch.equal(model[-1].weight, before[-1].weight) and torch.equal(model[-1].bias, before[-1].bias)
    assert not torch.equal(model[0].weight, before[0].weight)


def test_laf_needs_a_feature_extractor() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Identity())
    x = torch.randn(4, 3)
    with pytest.raises(UserError, match="laf needs a model with a feature extractor"):
        unlearn(model, make_objective("laf"),
                make_data(model, rows(x[:2], torch.zeros(2, dtype=torch.long)),
                          rows(x[2:], torch.zeros(2, dtype=torch.long)), 1, 0))
