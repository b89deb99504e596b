"""Conformance checks every registered loss must pass (the library behind ``lossbench check-loss``).

Each check builds fresh loss objects (stateful losses such as ``aldr-kl`` and ``ensloss`` must
not carry state from one evaluation into another), supplies the construction context and call
extras the loss declares in its needs, and returns one :class:`CheckResult`. Binary-capable
losses are checked with K = 2 and multi-class ones with K = 3; a check passes only if it passes
for every K the loss supports.

Retrieval contracts get inputs of their own shape (:func:`batch`): ``embeddings`` are (B, 8) with labels in
0..K-1, ``pairs`` are (B, 2 + 2, 8) [query, positive, two hard negatives] with document ids, and ``scores`` are
(B, 8) label scores with a multi-hot target; K counts classes, document ids or labels.

A loss is checked at its defaults and, by ``check-loss --all`` (:func:`run_all`), across its declared parameter
space: :func:`parameter_grid` draws a seeded grid from each :class:`~lossbench.losses.base.Param`'s bounds and
choices, and every configuration goes through the same battery (gradcheck in torch's fast mode there).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from lossbench.errors import LossInputError, SpecError
from lossbench.losses import LOSSES, make_loss
from lossbench.losses.base import CALL_NEEDS, LossBase, LossInfo, Param, first_checkpoint

#: Logit magnitudes of the extreme-logits check: saturating (p rounds to 1 in float32 beyond a gap of
#: about 17) and far beyond (exp overflows in float64 too), each in float32 and float64.
EXTREMES = (50.0, 1e4)
EXTREME_DTYPES = (torch.float32, torch.float64)
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
    params: Mapping[str, Any] = field(default_factory=dict)  # the non-default parameters checked

    @property
    def spec(self) -> str:
        """The loss spec checked, e.g. ``focal:gamma=0.5``."""
        return spec_text(self.loss, self.params)

    @property
    def skipped(self) -> bool:
        return self.passed and self.detail.split(": ", 1)[-1].startswith("skipped")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params": dict(self.params), "spec": self.spec}


def spec_text(name: str, params: Mapping[str, Any]) -> str:
    from lossbench.specs import format_value  # the one spelling of values in specs

    text = ",".join(f"{k}={format_value(v)}" for k, v in sorted(params.items()))
    return f"{name}:{text}" if text else name


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

    def __init__(self, name: str, params: Mapping[str, Any] | None = None, fast_gradcheck: bool = False) -> None:
        self.name = name
        self.params = dict(params or {})
        self.fast_gradcheck = fast_gradcheck
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


def extreme_batch(h: Harness, k: int, scale: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of magnitude ``scale``: random signs, one row confidently right and one confidently wrong."""
    x, y = h.batch(k, 8, 1, dtype)
    x = torch.where(x > 0, scale, -scale).to(dtype)
    if h.masks:
        sign = (2 * y - 1).to(dtype)[:, None] if k == 1 else (2 * F.one_hot(y, k).permute(0, 3, 1, 2) - 1).to(dtype)
        x[0] = scale * sign[0]  # confidently right everywhere
        x[1] = -scale * sign[1]  # confidently wrong everywhere
    elif h.info.input in ("logits", "probabilities"):
        x[0] = -scale
        x[0, y[0]] = scale  # confidently right
        x[1] = scale
        x[1, y[1]] = -scale  # confidently wrong
    return x, y


def check_extreme(h: Harness, k: int) -> str:
    for scale in EXTREMES:
        for dtype in EXTREME_DTYPES:
            x, y = extreme_batch(h, k, scale, dtype)
            _require_finite(f"±{scale:g} {str(dtype).removeprefix('torch.')}", *h.value_and_grad(x, y))
    return "±" + ", ±".join(f"{s:g}" for s in EXTREMES) + " in float32 and float64"


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
    if not h.build(k).exact_gradient:
        return "skipped: the loss declares a surrogate gradient (exact_gradient=False)"
    x, y = h.batch(k, 4, 4, torch.float64)
    x.requires_grad_(True)

    def fn(inp: torch.Tensor) -> torch.Tensor:
        return h.value(inp, y, "mean")  # a fresh loss per call: finite differences see no state

    try:
        torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=h.fast_gradcheck)
    except LossInputError:
        raise
    except Exception as exc:  # gradcheck raises GradcheckError with the mismatching Jacobians
        raise CheckFailed(f"autograd disagrees with finite differences: {str(exc).splitlines()[0]}") from None
    return "float64, B=4" + (", fast mode" if h.fast_gradcheck else "")


def _moved(new: torch.Tensor, base: torch.Tensor) -> bool:
    """A change beyond round-off, relative to the base's own size: saturated losses (AnyLoss at L = 73, and
    gradients of 1e-33 at L = 292) move sample 0's gradient only a little."""
    atol = min(1e-12, 1e-6 * float(base.abs().max()))
    return not _close(new, base, 1e-6, atol)


def check_batch_dependence(h: Harness, k: int) -> str:
    b = 6
    x, y = h.batch(k, b, 5)
    observed = False
    inert = True  # sample 0 gets no gradient in any batch: dependence cannot show
    # random batch-mates, then the same batch-mates scaled far up and down (rank-based losses such
    # as ensloss only react when sample 0 changes rank)
    variants = [h.batch(k, b, 100 + t) for t in range(4)] + [(s * x, y) for s in (10.0, -10.0, 0.1)]
    # a loss with random draws (ensloss) may draw values that hide the dependence for one seed: try a few
    for seed in (SEED, SEED + 1, SEED + 2) if "seed" in h.info.needs else (SEED,):
        base_out, base_grad = h.value_and_grad(x, y, seed=seed)
        inert = inert and not base_grad[0].any()
        for x2, y2 in variants:
            x2, y2 = x2.clone(), y2.clone()
            x2[0], y2[0] = x[0], y[0]  # same sample 0, new batch-mates
            out, grad = h.value_and_grad(x2, y2, seed=seed)
            inert = inert and not grad[0].any()
            if _moved(grad[0], base_grad[0]) or (not h.info.batch_level and _moved(out[0], base_out[0])):
                observed = True
        if observed:
            break
    declared = h.info.batch_dependent
    if declared and not observed and inert:
        return "skipped: sample 0 gets a zero gradient in every batch (saturated or inactive)"
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


def run_check(
    name: str, check: str, params: Mapping[str, Any] | None = None, fast_gradcheck: bool = False
) -> CheckResult:
    """Run one check on one loss for every K it supports.

    A configuration from the parameter grid (``fast_gradcheck``) that refuses the check's inputs with a
    clear :class:`LossInputError` (``soft-topk`` with k at least the number of labels) skips the check.
    """
    h = Harness(name, params, fast_gradcheck)
    params = dict(params or {})
    details = []
    for k in class_values(name):
        h.k = k
        try:
            details.append(f"K={k}: {CHECK_FUNCTIONS[check](h, k)}")
        except CheckFailed as exc:
            return CheckResult(name, check, False, f"K={k}: {exc}", params)
        except LossInputError as exc:
            if not fast_gradcheck:
                return CheckResult(name, check, False, f"K={k}: {type(exc).__name__}: {exc}", params)
            details.append(f"K={k}: skipped: the inputs are refused ({exc})")
        except Exception as exc:  # a crash is a failure, reported with its type
            return CheckResult(name, check, False, f"K={k}: {type(exc).__name__}: {exc}", params)
    return CheckResult(name, check, True, "; ".join(details), params)


def run_checks(
    name: str, params: Mapping[str, Any] | None = None, checks: Sequence[str] = CHECKS, fast_gradcheck: bool = False
) -> list[CheckResult]:
    """All conformance checks for one registered loss with ``params`` (its defaults when None)."""
    LOSSES.get(name)  # unknown names fail here with a suggestion
    with one_thread():
        return [run_check(name, c, params, fast_gradcheck) for c in checks]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: the checks evaluate tiny tensors, where a second thread costs more than it gives
    (soft-cldice's checks take 20 times longer with two threads on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# -- the parameter grid -------------------------------------------------------------------------------------

#: How far an unbounded range is sampled: to REACH times the default's magnitude (at least 1) beyond it.
REACH = 10.0


def _span(p: Param) -> tuple[float, float]:
    """The finite range sampled: the declared bounds, unbounded sides cut at ``REACH``."""
    reach = REACH * max(1.0, abs(float(p.default)))
    low = float(p.default) - reach if p.low is None else float(p.low)
    high = float(p.default) + reach if p.high is None else float(p.high)
    return low, high


def param_values(p: Param, rng: random.Random) -> list[Any]:
    """Values of one parameter to check besides its default.

    Choices and booleans: every value. Numbers: both ends of the range (just inside an open end), a quarter
    and four times the default, and one seeded draw (log-uniform over wide positive ranges), rounded to three
    significant digits; values the parameter refuses are dropped. Free-form strings: none.
    """
    if p.choices is not None:
        candidates: list[Any] = list(p.choices)
    elif p.kind is bool:
        candidates = [True, False]
    elif p.kind in (int, float):
        low, high = _span(p)
        inset = 1e-3 * (high - low)
        ends = [low + inset if p.low_open else low, high - inset if p.high_open else high]
        default = float(p.default)
        near = [default / 4, default * 4] if default != 0 else []
        if low > 0 and high / low > 100:
            draw = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            draw = rng.uniform(low, high)
        candidates = [round(v) if p.kind is int else float(f"{v:.3g}") for v in [*ends, *near, draw]]
    else:
        return []
    values: list[Any] = []
    for value in candidates:
        try:
            value = p.validate("grid", "value", value)
        except SpecError:
            continue
        if value != p.default and value not in values:
            values.append(value)
    return values


def parameter_grid(name: str, seed: int = SEED) -> list[dict[str, Any]]:
    """Configurations of one loss besides its defaults: each parameter's values in turn, the others at their
    defaults, then (with several parameters) one seeded joint configuration."""
    info: LossInfo = LOSSES.get(name).info
    rng = random.Random(f"{name}:{seed}")  # the same grid on every run and machine
    values = {pname: param_values(p, rng) for pname, p in info.params.items()}
    grid = [{pname: v} for pname, vs in values.items() for v in vs]
    varied = [pname for pname, vs in values.items() if vs]
    if len(varied) > 1:
        grid.append({pname: rng.choice(values[pname]) for pname in varied})
    return grid


def run_grid(name: str, checks: Sequence[str] = CHECKS) -> list[CheckResult]:
    """Every check for every configuration of :func:`parameter_grid` (gradcheck in fast mode)."""
    return [r for params in parameter_grid(name) for r in run_checks(name, params, checks, fast_gradcheck=True)]


def run_all(checks: Sequence[str] = CHECKS, grid: bool = True) -> list[CheckResult]:
    """All conformance checks for every registered loss, at its defaults and (``grid``) across its parameters."""
    results = []
    for name in LOSSES.names():
        results += run_checks(name, checks=checks)
        if grid:
            results += run_grid(name, checks)
    return results
