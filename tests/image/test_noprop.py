"""NoProp-DT: every block trains on its own; no gradient reaches another block."""

from __future__ import annotations

import torch

from lossbench.losses import make_loss
from lossbench.methods import METHODS
from lossbench.methods.base import Batch, StepState
from lossbench.methods.noprop import cosine_alpha_bar
from lossbench.models.cnn import cnn


def setup(T: int = 4):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = cnn([1, 8, 8], 5, channels=[4, 8])
    method = METHODS.get("noprop-dt")(T=T)
    state = StepState(generator=torch.Generator().manual_seed(3))
    loss = make_loss("ce", {})
    method.setup(model, None, loss, state, None)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 5
    return model, method, state, loss, Batch(x, y, torch.arange(16))


def test_a_block_loss_reaches_only_its_own_block() -> None:
    _, method, state, _, batch = setup()
    u = torch.nn.functional.one_hot(batch.y, 5).float()
    for t in range(1, 5):
        method.net.zero_grad(set_to_none=True)
        method.net.block_loss(t, batch.x, u, state.generator, 0.1).backward()
        for s, block in enumerate(method.net.blocks, start=1):
            grads = [p.grad for p in block.parameters()]
            if s == t:
                assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
            else:
                assert all(g is None for g in grads), f"block {t}'s loss reached block {s}"
        assert all(p.grad is None for p in method.net.head.parameters())


def test_one_update_equals_independent_block_updates() -> None:
    _, method, state, loss, batch = setup()
    gen_state = state.generator.get_state()
    head_loss, block_losses = method.objective(batch, loss, state)
    sum(block_losses, head_loss).backward()
    joint = [p.grad.clone() for b in method.net.blocks for p in b.parameters()]
    # the same draws, each block's loss alone
    state.generator.set_state(gen_state)
    method.net.zero_grad(set_to_none=True)
    _, block_losses = method.objective(batch, loss, state)
    alone = []
    for b, value in zip(method.net.blocks, block_losses, strict=True):
        value.backward(retain_graph=True)
        alone += [p.grad.clone() for p in b.parameters()]
    assert all(torch.allclose(a, j) for a, j in zip(alone, joint, strict=True))


def test_model_predicts_through_the_block_chain_and_keeps_it_in_the_state_dict() -> None:
    model, method, _, _, batch = setup()
    assert any(k.startswith("noprop.blocks.3.") for k in model.state_dict())
    model.eval()
    assert torch.equal(model(batch.x), method.net(batch.x))


def test_schedule_runs_from_noise_to_signal() -> None:
    ab = cosine_alpha_bar(10)
    assert ab[0] == 0 and ab[-1] <= 0.99 and bool((ab[1:] > ab[:-1]).all())
