"""Property tests over every registered loss: shape, finiteness, gradients, bounded ranges."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossbench.conformance import batch, class_values, context, extras_for
from lossbench.losses import LOSSES, make_loss

#: Losses with a known range for their per-sample (or batch) value.
BOUNDS: dict[str, tuple[float, float]] = {
    "mae": (0.0, 1.0),
    "gce": (0.0, 1 / 0.7),
    "brier": (0.0, 2.0),
    "anyloss-acc": (0.0, 1.0),
    "anyloss-f1": (0.0, 1.0),
    "anyloss-fbeta": (0.0, 1.0),
    "anyloss-gmean": (0.0, 1.0),
    "anyloss-bacc": (0.0, 1.0),
}
NONNEGATIVE = {
    "ce",
    "weighted-ce",
    "focal",
    "cb-ce",
    "cb-focal",
    "ldam",
    "label-smoothing",
    "logit-adjust",
    "balanced-softmax",
    "mse-onehot",
    "comp-sum",
    "sum-exp",
    "z-loss",
    "dro-kl",
    "bce",
    "seg-focal",
    "dice-bce",
    "betti-matching",
}
BOUNDS.update({"dice": (0.0, 1.0), "tversky": (0.0, 1.0), "soft-cldice": (0.0, 1.0)})


def evaluate(name: str, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    loss = make_loss(name, {"reduction": "none"}, **context(k))
    x = x.clone().requires_grad_(True)
    extras: dict[str, Any] = extras_for(loss, x.shape[0])
    out = loss(x, y, **extras)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(LOSSES.names()),
    b=st.integers(1, 10),
    scale=st.sampled_from([0.0, 0.1, 1.0, 10.0, 100.0, 1e4]),
    seed=st.integers(0, 10_000),
    pick_k=st.integers(0, 1),
)
def test_shape_finiteness_and_range(name: str, b: int, scale: float, seed: int, pick_k: int) -> None:
    ks = class_values(name)
    k = ks[min(pick_k, len(ks) - 1)]
    info = LOSSES.get(name).info
    if info.input == "masks":  # logit maps (b, k, 6, 6) and masks (b, 6, 6)
        g = torch.Generator().manual_seed(seed)
        x = scale * torch.randn(b, k, 6, 6, generator=g)
        y = torch.randint(0, max(k, 2), (b, 6, 6), generator=g)
    elif info.input in ("logits", "probabilities"):
        g = torch.Generator().manual_seed(seed)
        x = scale * torch.randn(b, k, generator=g)
        y = torch.randint(0, k, (b,), generator=g)
    else:  # embeddings, query–document pairs and multi-label scores have their own shapes
        x, y = batch(k, b, seed, contract=info.input)
        x = scale * x
    out, grad = evaluate(name, x, y, k)
    assert out.shape == (() if info.batch_level else (b,))
    assert torch.isfinite(out).all(), (name, out)
    assert torch.isfinite(grad).all(), name
    tol = 1e-5
    if name in BOUNDS:
        low, high = BOUNDS[name]
        assert (out >= low - tol).all() and (out <= high + tol).all(), (name, out)
    if name in NONNEGATIVE:
        assert (out >= -tol).all(), (name, out)
