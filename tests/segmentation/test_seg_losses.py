"""Mask losses: the input contract and known values (tests/losses runs the conformance checks on every loss)."""

from __future__ import annotations

import pytest
import torch

from lossbench.errors import LossInputError
from lossbench.losses import LOSSES, make_loss
from lossbench.losses.segmentation import soft_skeleton

SEG_LOSSES = ["bce", "dice", "dice-bce", "seg-focal", "tversky", "soft-cldice", "betti-matching"]


def masks(b: int = 2, side: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 1, side, side, generator=g), (torch.rand(b, side, side, generator=g) > 0.7).long()


@pytest.mark.parametrize("name", SEG_LOSSES)
def test_registered_for_segmentation_masks(name: str) -> None:
    info = LOSSES.get(name).info
    assert info.input == "masks" and info.tasks == frozenset({"segmentation"})


@pytest.mark.parametrize(
    ("x", "y", "fix"),
    [
        (torch.randn(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long), "unsqueeze"),
        (torch.randn(2, 1, 8, 8), torch.zeros(2, 1, 8, 8, dtype=torch.long), "squeeze"),
        (torch.randn(2, 1, 8, 8), torch.zeros(2, 8, 8), "long"),
        (torch.randn(2, 1, 8, 8), torch.full((2, 8, 8), 3), "0/1"),
    ],
)
def test_contract_errors_name_the_fix(x: torch.Tensor, y: torch.Tensor, fix: str) -> None:
    with pytest.raises(LossInputError) as err:
        make_loss("dice")(x, y)
    assert fix in str(err.value)


def test_dice_known_value() -> None:
    y = torch.zeros(1, 4, 4, dtype=torch.long)
    y[0, 0, :2] = 1
    x = torch.full((1, 1, 4, 4), -1e4)
    x[0, 0, 0, 1:3] = 1e4  # one of two pixels right, one wrong
    assert float(make_loss("dice")(x, y)) == pytest.approx(1 - (2 * 1 + 1) / (2 + 2 + 1))


def test_tversky_half_is_dice_with_twice_the_smoothing_and_one_is_jaccard() -> None:
    x, y = masks()
    x = x.double()
    p, g = torch.sigmoid(x[:, 0]), y.double()
    tp, sp, sg = (p * g).sum((1, 2)), p.sum((1, 2)), g.sum((1, 2))
    half = make_loss("tversky", {"alpha": 0.5, "beta": 0.5, "reduction": "none"})(x, y)
    torch.testing.assert_close(half, 1 - (2 * tp + 2) / (sp + sg + 2))
    assert not torch.allclose(half, make_loss("dice", {"reduction": "none"})(x, y))  # smoothing 1, not 2
    one = make_loss("tversky", {"alpha": 1.0, "beta": 1.0, "reduction": "none"})(x, y)
    torch.testing.assert_close(one, 1 - (tp + 1) / (sp + sg - tp + 1))


def test_two_softmax_maps_equal_one_sigmoid_map() -> None:
    x, y = masks()
    two = torch.cat([torch.zeros_like(x), x], dim=1)  # softmax([0, z])_1 = sigmoid(z)
    for name in ("bce", "dice", "tversky", "soft-cldice"):
        assert torch.allclose(make_loss(name)(x, y), make_loss(name)(two, y), atol=1e-6), name


def test_soft_skeleton_keeps_a_thin_line() -> None:
    line = torch.zeros(1, 1, 9, 9)
    line[0, 0, 4, 1:8] = 1
    assert torch.allclose(soft_skeleton(line), line)
    block = torch.zeros(1, 1, 9, 9)
    block[0, 0, 2:7, 2:7] = 1
    assert soft_skeleton(block).sum() < block.sum() / 2


def test_cldice_prefers_connected_predictions() -> None:
    y = torch.zeros(1, 16, 16, dtype=torch.long)
    y[0, 8, 1:15] = 1
    good = torch.where(y[:, None] > 0, 6.0, -6.0)
    broken = good.clone()
    broken[0, 0, 8, 7:9] = -6.0
    loss = make_loss("soft-cldice", {"alpha": 1.0})
    assert float(loss(good, y)) < float(loss(broken, y))


def test_betti_matching_warmup_is_dice_alone_then_adds_the_term() -> None:
    x, y = masks()
    loss = make_loss("betti-matching", {"warmup": 3})
    assert loss.needs == {"epoch"}
    with pytest.raises(LossInputError, match="epoch"):
        loss(x, y)
    dice = make_loss("dice")(x, y)
    assert torch.allclose(loss(x, y, epoch=2), dice)  # Dice only during the warm-up
    after = make_loss("betti-matching", {"warmup": 0})
    assert after.needs == frozenset()  # no warm-up: callable without the epoch
    assert torch.allclose(loss(x, y, epoch=3), after(x, y))
    assert float(loss(x, y, epoch=3)) > float(dice)
    x = x.clone().requires_grad_(True)
    loss(x, y, epoch=3).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_betti_matching_relative_default_and_absolute_option() -> None:
    x, y = masks(side=12)
    rel, ab = (make_loss("betti-matching", {"warmup": 0, "relative": r}) for r in (True, False))
    assert make_loss("betti-matching").relative is True  # the paper's default
    assert not torch.allclose(rel(x, y), ab(x, y))


@pytest.mark.slow
def test_betti_matching_term_passes_the_conformance_checks() -> None:
    # check-loss calls with epoch=1, inside the default warm-up (Dice alone); this checks the Betti matching term
    from lossbench.conformance import run_checks

    failed = [f"{r.check}: {r.detail}" for r in run_checks("betti-matching", {"warmup": 0}) if not r.passed]
    assert not failed


def test_betti_matching_dims_can_be_chosen_from_a_loss_spec() -> None:
    from lossbench.errors import SpecError
    from lossbench.objectives import parse_objective

    for text, dims in (("betti-matching:dims=0", "0"), ("betti-matching:dims=1", "1"), ("betti-matching", "0,1")):
        spec = parse_objective(text)  # parses `0` as a number; the parameter's choices are names
        assert make_loss(spec.name, dict(spec.params)).dims == dims
    with pytest.raises(SpecError, match="one of 0, 1, 0,1"):
        parse_objective("betti-matching:dims=2")


def test_conformance_checks_call_a_warm_up_loss_past_its_warm_up() -> None:
    from lossbench.conformance import extras_for

    assert extras_for(make_loss("betti-matching"), 4) == {"epoch": 10}  # Dice + Betti matching, not Dice alone
    assert extras_for(make_loss("betti-matching", {"warmup": 0}), 4) == {}  # no warm-up: no epoch needed


@pytest.mark.parametrize("maps", [1, 2])
def test_seg_focal_gradient_is_finite_when_p_t_rounds_to_one(maps: int) -> None:
    # float32 logits of ±20: p_t rounds to 1, where (1 - p_t)^gamma has an infinite derivative for gamma < 1
    y = torch.zeros(1, 2, 2, dtype=torch.long)
    y[0, 0] = 1
    z = torch.where(y[:, None] > 0, 20.0, -20.0)
    z[0, 0, 1, 1] = 0.3  # one uncertain pixel
    loss = make_loss("seg-focal", {"gamma": 0.5})
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = (z if maps == 1 else torch.cat([torch.zeros_like(z), z], 1)).to(dtype).clone().requires_grad_(True)
        loss(x, y).backward()
        grads.append(x.grad)
    assert torch.isfinite(grads[0]).all()
    torch.testing.assert_close(grads[0], grads[1].float(), rtol=1e-5, atol=1e-7)
