"""Conformance checks every registered loss must pass (the library behind ``lossbench check-loss``).

Each check builds fresh loss objects (stateful losses such as ``aldr-kl`` and ``ensloss`` must
not carry state from one evaluation into another), supplies the construction context and call
extras the loss declares in its needs, and returns one :class:`CheckResult`. Binary-capable
losses are checked with K = 2 and multi-class ones with K = 3; a check passes only if it passes
for every K the loss supports.

Retrieval contracts get inputs of their own shape (:func:`batch`): ``embeddings`` are (B, 8) with labels in
0..K-1, ``pairs`` are (B, 2 + 2, 8) [query, positive, two hard negatives] with document ids, and ``scores`` are
(B, 8) label scores with a multi-hot target; K counts classes, document ids or labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from lossbench.losses import LOSSES, make_loss
from lossbench.losses.base import CALL_NEEDS, LossBase, first_checkpoint

EXTREME = 1e4
N_SAMPLES = 64
SEED = 0
EMBEDDING_DIM = 8
HARD_NEGATIVES = 2
N_LABELS = 8

#: The checks in the order they are reported.
CHECKS = (
    "defaults",
    "extreme-logits",
    "one-class-batch",
    "batch-of-one",
    "gradcheck",
    "batch-dependence",
    "determinism",
    "devices",
    "reduction",
)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one loss."""

    loss: str
    check: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckFailed(AssertionError):
    """Raised inside a check to report a failure with its reason."""


# -- inputs ---------------------------------------------------------------------------------------------


def class_counts(k: int) -> list[int]:
    """Imbalanced training counts (roughly halving per class) so re-weighting losses do something."""
    return [max(N_SAMPLES >> (c + 1), 1) for c in range(k)]


def context(k: int, seed: int = SEED) -> dict[str, Any]:
    """Everything a loss may need at construction; make_loss passes on only what it declares."""
    return {"class_counts": class_counts(k), "n_classes": k, "n_samples": N_SAMPLES, "seed": seed,
            "embedding_dim": EMBEDDING_DIM}


def extras_for(loss: LossBase, batch: int, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Per-call extras the loss declares: dataset row indices and the epoch (past a warm-up it declares,
    so the checks see the whole loss, not the warm-up's)."""
    epoch = max(1, first_checkpoint(loss))
    available = {"sample_index": torch.arange(batch, device=device), "epoch": epoch}
    return {k: v for k, v in available.items() if k in loss.needs & CALL_NEEDS}


def class_values(name: str) -> list[int]:
    """The numbers of classes a loss is checked with: 2 if it supports binary, 3 if multi-class.

    Mask losses are checked with one logit map (sigmoid) and with two (softmax).
    """
    info = LOSSES.get(name).info
    if info.input == "scores":
        return [N_LABELS]
    if info.input == "masks":
        return [1, 2]
    tasks = info.tasks
    ks = ([2] if "binary" in tasks else []) + ([3] if "multiclass" in tasks else [])
    return ks or [3]


def batch(
    k: int, b: int, seed: int, dtype: torch.dtype = torch.float32, contract: str = "logits"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs of the loss's contract with every class (label, document id) present when b >= k."""
    if contract == "masks":
        return mask_batch(k, b, seed, dtype)
    g = torch.Generator().manual_seed(seed)
    shape = {"embeddings": (b, EMBEDDING_DIM), "pairs": (b, 2 + HARD_NEGATIVES, EMBEDDING_DIM)}.get(contract, (b, k))
    x = torch.randn(*shape, generator=g, dtype=dtype)
    y = torch.arange(b) % k  # every class present when b >= k
    y = y[torch.randperm(b, generator=g)]
    if contract == "scores":  # multi-hot: the row's label plus a random extra one
        extra = torch.randint(0, k, (b,), generator=g)
        y = (torch.nn.functional.one_hot(y, k) | torch.nn.functional.one_hot(extra, k)).long()
    return x, y


MASK_SIDE = 6  # small: gradcheck perturbs every input pixel


def mask_batch(k: int, b: int, seed: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Logit maps (b, k, 6, 6) and integer masks (b, 6, 6) for mask losses; every mask holds both classes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, k, MASK_SIDE, MASK_SIDE, generator=g, dtype=dtype)
    y = (torch.rand(b, MASK_SIDE, MASK_SIDE, generator=g) < 0.3).long()
    y[:, 1:5, 2] = 1  # a thin bar, so topology losses see a structure
    y[:, 0, 0] = 0
    return x, y


# -- helpers ----------------------------------------------------------------------------------------------


class Harness:
    """Builds fresh instances of one loss (with fixed params) and evaluates them."""

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.params = dict(params or {})
        self.info = LOSSES.get(name).info
        self.k = 3  # classes, document ids or labels of the current check; set by run_check
        self.masks = self.info.input == "masks"

    def batch(self, k: int, b: int, seed: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Random inputs in the loss's contract (logits, embeddings, pairs, scores or logit maps and masks)."""
        return batch(k, b, seed, dtype, self.info.input)

    def build(self, k: int, reduction: str = "mean", seed: int = SEED, device: str = "cpu") -> LossBase:
        return make_loss(self.name, {**self.params, "reduction": reduction}, **context(k, seed)).to(device)

    def value(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        reduction: str = "mean",
        seed: int = SEED,
        loss: LossBase | None = None,
    ) -> torch.Tensor:
        k = x.shape[1] if self.info.input in ("logits", "probabilities") else self.k
        loss = loss if loss is not None else self.build(k, reduction, seed, str(x.device))
        return loss(x, y, **extras_for(loss, x.shape[0], x.device))

    def value_and_grad(
        self, x: torch.Tensor, y: torch.Tensor, seed: int = SEED
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().clone().requires_grad_(True)
        out = self.value(x, y, "none", seed)  # per-sample values (one value for batch-level losses)
        (grad,) = torch.autograd.grad(out.sum(), x)
        return out.detach(), grad


def _require_finite(what: str, out: torch.Tensor, grad: torch.Tensor) -> None:
    if not torch.isfinite(out).all():
        raise CheckFailed(f"{what}: non-finite value {out.flatten()[:4].tolist()}")
    if not torch.isfinite(grad).all():
        raise CheckFailed(f"{what}: non-finite gradient")


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and torch.allclose(a.cpu().double(), b.cpu().double(), rtol=rtol, atol=atol)


# -- checks (each raises CheckFailed or returns a detail string) ------------------------------------------


def check_defaults(h: Harness, k: int) -> str:
    for pname, param in h.info.params.items():
        param.validate(h.name, pname, param.default)
    explicit = make_loss(h.name, {**h.info.defaults, "reduction": "mean"}, **context(k))
    implicit = make_loss(h.name, None, **context(k))
    if explicit.params != implicit.params:
        raise CheckFailed(f"defaults differ: {explicit.params} vs {implicit.params}")
    return f"{len(h.info.params)} params"


def check_extreme(h: Harness, k: int) -> str:
    x, y = h.batch(k, 8, 1)
    if h.masks:
        x = torch.where(x > 0, EXTREME, -EXTREME)
        sign = (2 * y - 1).to(x.dtype)[:, None] if k == 1 else (2 * F.one_hot(y, k).permute(0, 3, 1, 2) - 1)
        x[0] = EXTREME * sign[0]  # confidently right everywhere
        x[1] = -EXTREME * sign[1]  # confidently wrong everywhere
        _require_finite(f"±{EXTREME:g} logits", *h.value_and_grad(x, y))
        return f"±{EXTREME:g}"
    x = torch.where(x > 0, EXTREME, -EXTREME)
    x[0] = -EXTREME
    x[0, y[0]] = EXTREME  # confidently right
    x[1] = EXTREME
    x[1, y[1]] = -EXTREME  # confidently wrong
    _require_finite(f"±{EXTREME:g} logits", *h.value_and_grad(x, y))
    return f"±{EXTREME:g}"


def check_one_class(h: Harness, k: int) -> str:
    for label in (0, max(k, 2) - 1):
        x, y = h.batch(k, 6, 2)
        if h.info.input == "scores":  # multi-hot rows: only this label on
            y = torch.zeros_like(y).index_fill_(1, torch.tensor([label]), 1)
        else:
            y = torch.full_like(y, label)
        _require_finite(f"all labels {label}", *h.value_and_grad(x, y))
    return "all-0 and all-last batches"


def check_batch_of_one(h: Harness, k: int) -> str:
    x, y = h.batch(k, 1, 3)
    _require_finite("batch of one", *h.value_and_grad(x, y))
    return "B=1"


def check_gradcheck(h: Harness, k: int) -> str:
    if not h.info.exact_gradient:
        return "skipped: the loss declares a surrogate gradient (exact_gradient=False)"
    x, y = h.batch(k, 4, 4, torch.float64)
    x.requires_grad_(True)

    def fn(inp: torch.Tensor) -> torch.Tensor:
        return h.value(inp, y, "mean")  # a fresh loss per call: finite differences see no state

    try:
        torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-3)
    except Exception as exc:  # gradcheck raises GradcheckError with the mismatching Jacobians
        raise CheckFailed(f"autograd disagrees with finite differences: {str(exc).splitlines()[0]}") from None
    return "float64, B=4"


def check_batch_dependence(h: Harness, k: int) -> str:
    b = 6
    x, y = h.batch(k, b, 5)
    observed = False
    # random batch-mates, then the same batch-mates scaled far up and down (rank-based losses such
    # as ensloss only react when sample 0 changes rank)
    variants = [h.batch(k, b, 100 + t) for t in range(4)] + [(s * x, y) for s in (10.0, -10.0, 0.1)]
    # a loss with random draws (ensloss) may draw values that hide the dependence for one seed: try a few
    for seed in (SEED, SEED + 1, SEED + 2) if "seed" in h.info.needs else (SEED,):
        base_out, base_grad = h.value_and_grad(x, y, seed=seed)
        for x2, y2 in variants:
            x2, y2 = x2.clone(), y2.clone()
            x2[0], y2[0] = x[0], y[0]  # same sample 0, new batch-mates
            out, grad = h.value_and_grad(x2, y2, seed=seed)
            # tight tolerances: saturated losses (AnyLoss at L = 73) move sample 0's gradient only a little
            if not _close(grad[0], base_grad[0], 1e-6, 1e-12):
                observed = True
            if not h.info.batch_level and not _close(out[0], base_out[0], 1e-6, 1e-12):
                observed = True
        if observed:
            break
    declared = h.info.batch_dependent
    if observed != declared:
        behaviour = "value and gradient do not" if declared else "value or gradient does"
        raise CheckFailed(
            f"declares batch_dependent={declared} but sample 0's {behaviour} change with its batch-mates"
        )
    return f"batch_dependent={declared} confirmed"


def check_determinism(h: Harness, k: int) -> str:
    x, y = h.batch(k, 8, 6)
    out1, grad1 = h.value_and_grad(x, y, seed=7)
    out2, grad2 = h.value_and_grad(x, y, seed=7)
    if not (torch.equal(out1, out2) and torch.equal(grad1, grad2)):
        raise CheckFailed("two fresh losses built with the same seed disagree")
    return "same seed, same value and gradient"


def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def check_devices(h: Harness, k: int) -> str:
    devices = available_devices()
    x, y = h.batch(k, 8, 8)
    ref_out, ref_grad = h.value_and_grad(x, y)
    for device in devices[1:]:
        out, grad = h.value_and_grad(x.to(device), y.to(device))
        if out.device.type != device or grad.device.type != device:
            raise CheckFailed(f"result left {device}: value on {out.device}, gradient on {grad.device}")
        if not (_close(out, ref_out, 1e-4, 1e-5) and _close(grad, ref_grad, 1e-4, 1e-5)):
            raise CheckFailed(f"{device} result differs from cpu")
    return ", ".join(devices)


def check_reduction(h: Harness, k: int) -> str:
    x, y = h.batch(k, 8, 9)
    outs = {r: h.value(x, y, r) for r in ("none", "mean", "sum")}
    if h.info.batch_level:
        if any(v.ndim != 0 for v in outs.values()):
            raise CheckFailed("a batch-level loss must return one value whatever the reduction")
        return "batch-level: one value per batch"
    if outs["none"].shape != (8,):
        raise CheckFailed(f"reduction='none' returned shape {tuple(outs['none'].shape)}, expected (8,)")
    if not _close(outs["mean"], outs["none"].mean()):
        raise CheckFailed("reduction='mean' is not the mean of reduction='none'")
    if not _close(outs["sum"], outs["none"].sum()):
        raise CheckFailed("reduction='sum' is not the sum of reduction='none'")
    return "none/mean/sum consistent"


CHECK_FUNCTIONS: dict[str, Callable[[Harness, int], str]] = {
    "defaults": check_defaults,
    "extreme-logits": check_extreme,
    "one-class-batch": check_one_class,
    "batch-of-one": check_batch_of_one,
    "gradcheck": check_gradcheck,
    "batch-dependence": check_batch_dependence,
    "determinism": check_determinism,
    "devices": check_devices,
    "reduction": check_reduction,
}


def run_check(name: str, check: str, params: Mapping[str, Any] | None = None) -> CheckResult:
    """Run one check on one loss for every K it supports."""
    h = Harness(name, params)
    details = []
    for k in class_values(name):
        h.k = k
        try:
            details.append(f"K={k}: {CHECK_FUNCTIONS[check](h, k)}")
        except CheckFailed as exc:
            return CheckResult(name, check, False, f"K={k}: {exc}")
        except Exception as exc:  # a crash is a failure, reported with its type
            return CheckResult(name, check, False, f"K={k}: {type(exc).__name__}: {exc}")
    return CheckResult(name, check, True, "; ".join(details))


def run_checks(
    name: str, params: Mapping[str, Any] | None = None, checks: Sequence[str] = CHECKS
) -> list[CheckResult]:
    """All conformance checks for one registered loss."""
    LOSSES.get(name)  # unknown names fail here with a suggestion
    return [run_check(name, c, params) for c in checks]


def run_all(checks: Sequence[str] = CHECKS) -> list[CheckResult]:
    """All conformance checks for every registered loss."""
    return [r for name in LOSSES.names() for r in run_checks(name, checks=checks)]
