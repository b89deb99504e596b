"""Unlearning objectives: hand values, gradients, and the contract every objective keeps (the method equivalent of
check-loss: finite values, weights that move, determinism, batches of one, parameter validation)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lossbench.errors import SpecError, UserError
from lossbench.unlearning import OBJECTIVES, make_objective
from lossbench.unlearning.adversarial import pgd_toward_label
from lossbench.unlearning.loop import unlearn
from lossbench.unlearning.objectives import (
    ga_loss,
    log_likelihood,
    matching_loss,
    npo_loss,
    reference_kl,
)
from tests.unlearning.helpers import copy_model, data_for, problem

NAMES = [e.name for e in OBJECTIVES]


def test_the_family_is_complete() -> None:
    assert set(NAMES) == {"ga", "gd", "npo", "npo-rt", "finetune", "laf", "dmm", "adv-unlearn"}
    assert OBJECTIVES.get("laf").info.label_free
    assert not OBJECTIVES.get("npo").info.label_free


# -- formulas ------------------------------------------------------------------------------------------------------


def test_npo_at_the_reference_is_two_over_beta_log_two() -> None:
    z = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    y = torch.tensor([1, 2])
    ref = log_likelihood(z, y)
    for beta in (0.1, 1.0, 2.0):
        assert npo_loss(z, y, ref, beta).item() == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_npo_identity_and_bounds() -> None:
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-2.0, 2.0]])
    y = torch.tensor([0, 1, 0])
    ref = torch.tensor([-0.5, -1.0, -0.1])
    beta = 0.7
    x = log_likelihood(z, y) - ref
    expected = (2 / beta) * torch.log1p(torch.exp(beta * x)).mean()
    assert npo_loss(z, y, ref, beta).item() == pytest.approx(expected.item(), rel=1e-6)
    # bounded below by 0, GA is not
    far = torch.tensor([[-60.0, 60.0]])
    assert 0 <= npo_loss(far, torch.tensor([0]), torch.tensor([0.0]), beta).item() < 1e-10
    assert ga_loss(far, torch.tensor([0])).item() == pytest.approx(-120.0, rel=1e-6)


def test_npo_gradient_equals_gradient_ascent_at_the_reference() -> None:
    # (2/β)·log(1 + e^{βx}) has derivative 2σ(βx) = 1 at x = 0, whatever β
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    ref = log_likelihood(z, y).detach()
    for beta in (0.1, 1.0, 5.0):
        a = z.clone().requires_grad_(True)
        npo_loss(a, y, ref, beta).backward()
        b = z.clone().requires_grad_(True)
        ga_loss(b, y).backward()
        assert torch.allclose(a.grad, b.grad, atol=1e-12)


def test_npo_gradient_vanishes_once_forgotten() -> None:
    z = torch.tensor([[-30.0, 30.0]], dtype=torch.float64, requires_grad=True)
    npo_loss(z, torch.tensor([0]), torch.tensor([0.0], dtype=torch.float64), 1.0).backward()
    assert z.grad.abs().max().item() < 1e-20
    g = torch.tensor([[-30.0, 30.0]], dtype=torch.float64, requires_grad=True)
    ga_loss(g, torch.tensor([0])).backward()
    assert g.grad.abs().max().item() == pytest.approx(1.0)


def test_reference_kl_and_matching_hand_values() -> None:
    ref = torch.tensor([[0.0, 0.0]])
    z = torch.tensor([[math.log(3.0), 0.0]])  # p = (3/4, 1/4), p_ref = (1/2, 1/2)
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert reference_kl(z, ref).item() == pytest.approx(expected, rel=1e-6)
    assert reference_kl(ref, ref).item() == pytest.approx(0.0, abs=1e-7)
    assert matching_loss(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]])).item() == pytest.approx(5.0)


@pytest.mark.parametrize("fn", ["npo", "kl", "match", "ga"])
def test_gradcheck(fn: str) -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1, 0])
    other = torch.randn(5, 3, generator=g, dtype=torch.float64)
    ref = log_likelihood(other, y)
    funcs = {
        "npo": lambda a: npo_loss(a, y, ref, 0.5),
        "kl": lambda a: reference_kl(a, other),
        "match": lambda a: matching_loss(a, other),
        "ga": lambda a: ga_loss(a, y),
    }
    assert torch.autograd.gradcheck(funcs[fn], (z,))


# -- the contract of every objective -------------------------------------------------------------------------------


def run(name: str, seed: int = 0, budget: int = 4, batch_size: int = 8, **params: object):
    model, forget, retain = problem()
    before = copy_model(model)
    data = data_for(model, forget, retain, budget=budget, seed=seed)
    result = unlearn(model, make_objective(name, **params), data, batch_size=batch_size, seed=seed)
    return before, model, data, result


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_moves_the_weights_and_stays_finite(name: str) -> None:
    before, after, data, result = run(name)
    assert result.steps_run == 4 and result.diverged_at is None
    changed = any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters(), strict=True))
    assert changed
    assert all(torch.isfinite(p).all() for p in after.parameters())
    # the reference is the pre-trained model, untouched
    assert all(torch.equal(a, b) for a, b in zip(before.parameters(), data.reference.parameters(), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_is_deterministic(name: str) -> None:
    _, a, _, _ = run(name, seed=3)
    _, b, _, _ = run(name, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_takes_batches_of_one(name: str) -> None:
    _, after, _, result = run(name, batch_size=1, budget=2)
    assert result.steps_run == 2
    assert all(torch.isfinite(p).all() for p in after.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_objective_validates_its_parameters(name: str) -> None:
    with pytest.raises(SpecError, match="has no parameter 'gamma_typo'"):
        make_objective(name, gamma_typo=1.0)
    first = next(iter(OBJECTIVES.get(name).info.params))
    with pytest.raises(SpecError):
        make_objective(name, **{first: -1.0})


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(SpecError, match="Unknown unlearning method 'npo-r'") as err:
        make_objective("npo-r")
    assert "npo" in (err.value.hint or "")


def test_label_free_objective_never_reads_a_label() -> None:
    model, forget, retain = problem()
    forget.y.fill_(-1)  # cross-entropy on these would raise
    retain.y.fill_(-1)
    result = unlearn(model, make_objective("laf"), data_for(model, forget, retain), batch_size=8)
    assert result.steps_run == 4


def test_dmm_needs_the_attribution() -> None:
    model, forget, retain = problem()
    with pytest.raises(UserError, match="predicted oracle logits"):
        unlearn(model, make_objective("dmm"), data_for(model, forget, retain, predicted=False))


def test_dmm_converges_to_its_targets() -> None:
    model, forget, retain = problem()
    data = data_for(model, forget, retain, budget=300)
    assert data.predicted_oracle is not None
    err0 = F.mse_loss(model(forget.x), data.predicted_oracle["forget"]).item()
    unlearn(model, make_objective("dmm", lr=1e-2), data, batch_size=32)
    with torch.no_grad():
        err = F.mse_loss(model(forget.x), data.predicted_oracle["forget"]).item()
    assert err < 0.1 * err0


def test_adv_unlearn_without_attack_is_npo_plus_reference_kl() -> None:
    model, forget, retain = problem()
    twin = copy_model(model)
    unlearn(model, make_objective("adv-unlearn", epsilon=0.0, lr=1e-3), data_for(model, forget, retain, budget=1),
            batch_size=100)
    # by hand: one Adam step on NPO(forget) + KL(ref ‖ θ) on retain, full batches (same rows, same order)
    with torch.no_grad():
        ref_f, ref_r = twin(forget.x), twin(retain.x)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    from lossbench.unlearning.loop import batch_schedule
    f_idx = batch_schedule(len(forget), 100, 1, 0, which="forget")[0]
    r_idx = batch_schedule(len(retain), 100, 1, 0, which="retain")[0]
    loss = npo_loss(twin(forget.x[f_idx]), forget.y[f_idx], log_likelihood(ref_f[f_idx], forget.y[f_idx]), 0.1)
    loss = loss + reference_kl(twin(retain.x[r_idx]), ref_r[r_idx])
    loss.backward()
    opt.step()
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-7)


def test_adv_unlearn_attacks_only_after_warmup() -> None:
    def params_after(**kw: object) -> list[torch.Tensor]:
        model, forget, retain = problem()
        unlearn(model, make_objective("adv-unlearn", lr=1e-3, **kw), data_for(model, forget, retain, budget=2),
                batch_size=8)
        return [p.detach().clone() for p in model.parameters()]

    def first_step(**kw: object) -> list[torch.Tensor]:
        model, forget, retain = problem()
        unlearn(model, make_objective("adv-unlearn", lr=1e-3, **kw), data_for(model, forget, retain, budget=1),
                batch_size=8)
        return [p.detach().clone() for p in model.parameters()]

    # warmup 0.5 of a 2-step budget: step 0 is clean, step 1 attacked
    assert all(torch.equal(a, b) for a, b in zip(first_step(warmup=0.5), first_step(epsilon=0.0), strict=True))
    assert not all(torch.equal(a, b)
                   for a, b in zip(params_after(warmup=0.5), params_after(epsilon=0.0), strict=True))


def test_pgd_stays_in_the_ball_lowers_the_loss_and_leaves_weights_alone() -> None:
    model, forget, _ = problem()
    for p in model.parameters():
        p.grad = None
    eps = 0.3
    x_adv = pgd_toward_label(model, forget.x, (forget.y + 1) % 3, eps, 10, torch.Generator().manual_seed(0))
    assert (x_adv - forget.x).abs().max().item() <= eps + 1e-6
    target = (forget.y + 1) % 3
    with torch.no_grad():
        assert F.cross_entropy(model(x_adv), target) < F.cross_entropy(model(forget.x), target)
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(pgd_toward_label(model, forget.x, forget.y, 0.0, 5), forget.x)

def test_only_laf_is_label_free() -> None:
    assert [e.name for e in OBJECTIVES if e.obj.info.label_free] == ["laf"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_every_objective_runs_on_cuda_like_on_cpu(name: str) -> None:
    from lossbench.unlearning.objectives import Rows

    _, cpu_model, _, _ = run(name, seed=1)
    model, forget, retain = problem()
    model = model.cuda()
    forget, retain = (Rows(r.x.cuda(), r.y.cuda(), r.index.cuda()) for r in (forget, retain))
    result = unlearn(model, make_objective(name), data_for(model, forget, retain, seed=1), batch_size=8, seed=1)
    assert result.steps_run == 4
    for p, q in zip(model.parameters(), cpu_model.parameters(), strict=True):
        assert torch.allclose(p.cpu(), q, atol=1e-4)
