"""The loss contract: metadata, parameter validation, input guards, reduction.

Every loss is a :class:`LossBase` subclass: one ``torch.nn.Module`` with a class
attribute ``info`` (a :class:`LossInfo`) and a ``per_sample`` method. The base
class validates parameters once at construction, checks tensors against the
declared input contract and applies ``reduction``, so subclasses never reduce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from lossbench.errors import LossInputError, SpecError

TASKS = frozenset(
    {"binary", "multiclass", "multilabel", "embedding", "query-document", "segmentation", "one-class"}
)
#: "embeddings": (B, d) float with (B,) integer labels; "pairs": (B, 2 + H, d) float rows
#: [query, positive, H hard negatives] with (B,) integer document ids; "scores": (B, L) float
#: query–label scores with a (B, L) multi-hot target.
INPUTS = frozenset({"logits", "probabilities", "embeddings", "pairs", "scores", "masks"})
#: Things a loss can ask for. Construction context comes from the task;
#: per-call extras are passed to ``forward`` by the training loop.
CONTEXT_NEEDS = frozenset({"class_counts", "n_classes", "n_samples", "seed", "embedding_dim"})
CALL_NEEDS = frozenset({"sample_index", "epoch"})
REDUCTIONS = ("mean", "sum", "none")


@dataclass(frozen=True)
class Param:
    """One loss parameter: its default and the values it accepts."""

    default: Any
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def kind(self) -> type:
        return type(self.default) if self.default is not None else str

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind is bool:
            return "a bool"
        if self.low is None and self.high is None:
            return f"a {self.kind.__name__}"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"a {self.kind.__name__} in {lo}{low}, {high}{hi}"

    def validate(self, loss: str, name: str, value: Any) -> Any:
        bad = SpecError(
            f"The {name!r} parameter of loss {loss!r} must be {self.describe()}. Got {value!r} instead.",
            f"Example: --loss {loss}:{name}={self.default}",
        )
        if self.choices is not None:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in self.choices:
                value = str(value)  # a spec parses `dims=0` as a number; the choices are names
            if value not in self.choices:
                raise bad
            return value
        kind = self.kind
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise bad
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            if kind is int and float(value) != int(value):
                raise bad
            value = kind(value)
            if value != value:  # NaN
                raise bad
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                raise bad
            if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
                raise bad
            return value
        if not isinstance(value, kind):
            raise bad
        return value


@dataclass(frozen=True)
class LossInfo:
    """What the registry, the runner and ``check-loss`` know about a loss."""

    name: str
    family: str
    tasks: frozenset[str]
    input: str
    params: Mapping[str, Param]
    citation: str
    summary: str = ""
    formula: str = ""
    batch_dependent: bool = False
    needs: frozenset[str] = field(default_factory=frozenset)
    vectorizable: bool = True
    batch_level: bool = False  # returns one value per batch, not one per sample
    version: str = "1"
    caveats: str = ""
    #: False when autograd returns a deliberate surrogate (detached weights, random
    #: derivatives, state updated from the input), so finite differences cannot agree.
    exact_gradient: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - TASKS
        if unknown:
            raise ValueError(f"{self.name}: unknown task types {sorted(unknown)}")
        if self.input not in INPUTS:
            raise ValueError(f"{self.name}: unknown input contract {self.input!r}")
        bad_needs = set(self.needs) - CONTEXT_NEEDS - CALL_NEEDS
        if bad_needs:
            raise ValueError(f"{self.name}: unknown needs {sorted(bad_needs)}")

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}


class LossBase(nn.Module):
    """Base class of every registered loss.

    Subclasses set ``info`` and implement :meth:`per_sample`, which returns a
    tensor of shape ``(batch,)`` (or a 0-d tensor when ``info.batch_level``).
    Validated parameters are available as attributes of the same name.
    """

    info: ClassVar[LossInfo]

    def __init__(self, reduction: str = "mean", **kwargs: Any) -> None:
        super().__init__()
        name = self.info.name
        if reduction not in REDUCTIONS:
            raise SpecError(
                f"The 'reduction' of loss {name!r} must be one of {', '.join(REDUCTIONS)}. Got {reduction!r}."
            )
        self.reduction = reduction
        context = {k: kwargs.pop(k) for k in list(kwargs) if k in CONTEXT_NEEDS}
        unknown = set(kwargs) - set(self.info.params)
        if unknown:
            accepted = ", ".join(self.info.params) or "none"
            raise SpecError(
                f"Loss {name!r} has no parameter {sorted(unknown)[0]!r}.",
                f"Its parameters are: {accepted}.",
            )
        self.params: dict[str, Any] = {}
        for pname, param in self.info.params.items():
            value = param.validate(name, pname, kwargs.get(pname, param.default))
            self.params[pname] = value
            setattr(self, pname, value)
        #: What this instance needs; wrappers add the needs of the loss they wrap.
        self.needs: frozenset[str] = type(self).needs_for(self.params)
        #: Whether autograd gives this instance's exact gradient (``info.exact_gradient`` unless a
        #: parameter makes the gradient a surrogate, as few bisection steps do in ``soft-topk``).
        self.exact_gradient: bool = self.info.exact_gradient
        for need in self.needs & CONTEXT_NEEDS:
            if context.get(need) is None:
                raise SpecError(
                    f"Loss {name!r} needs {need!r} at construction.",
                    f"Pass {need}=... (the training loop does this from the training split).",
                )
        self.context = context

    @classmethod
    def needs_for(cls, params: Mapping[str, Any]) -> frozenset[str]:
        """What the loss needs when built with ``params`` (``info.needs`` unless a wrapper adds more)."""
        return cls.info.needs

    # -- input guards -------------------------------------------------------------------------------
    def check_inputs(self, input: torch.Tensor, target: torch.Tensor) -> None:
        name = self.info.name
        if not torch.is_tensor(input) or not torch.is_tensor(target):
            raise LossInputError(
                f"Loss {name!r} takes tensors; got {type(input).__name__} and {type(target).__name__}."
            )
        if self.info.input in ("logits", "probabilities"):
            if input.ndim != 2:
                raise LossInputError(
                    f"Loss {name!r} expects {self.info.input} of shape (batch, n_classes); "
                    f"got shape {tuple(input.shape)}.",
                    "For one-logit binary outputs, stack them as (batch, 2) logits [0, z].",
                )
            if target.ndim != 1 or target.shape[0] != input.shape[0]:
                raise LossInputError(
                    f"Loss {name!r} expects integer labels of shape ({input.shape[0]},); "
                    f"got {tuple(target.shape)}."
                )
            if target.dtype.is_floating_point or target.dtype == torch.bool:
                raise LossInputError(
                    f"Loss {name!r} expects integer class labels; got dtype {target.dtype}.",
                    "Convert with target.long().",
                )
            if input.shape[0] == 0:
                raise LossInputError(f"Loss {name!r} got an empty batch.")
            if outside(target, 0, input.shape[1] - 1):
                raise LossInputError(
                    f"Loss {name!r} got labels outside [0, {input.shape[1] - 1}]: min {int(target.min())}, "
                    f"max {int(target.max())}."
                )
            if "binary" not in self.info.tasks and input.shape[1] == 2 and self.info.input == "logits":
                pass  # multiclass-only losses refuse K=2 themselves where the formula requires it
        elif self.info.input in ("embeddings", "pairs", "scores"):
            self.check_retrieval_inputs(input, target)

    def check_retrieval_inputs(self, input: torch.Tensor, target: torch.Tensor) -> None:
        """The embedding, pair and score contracts (see :data:`INPUTS`)."""
        name, kind = self.info.name, self.info.input
        shape = {"embeddings": "(batch, dim)", "pairs": "(batch, 2 + hard_negatives, dim)", "scores": "(batch, labels)"}
        ndim = 3 if kind == "pairs" else 2
        if input.ndim != ndim or not input.dtype.is_floating_point:
            raise LossInputError(
                f"Loss {name!r} expects float {kind} of shape {shape[kind]}; got {input.dtype} of shape "
                f"{tuple(input.shape)}.",
                "Pass the embedding network's output" + (" stacked as [query, positive, negatives...]"
                                                         if kind == "pairs" else "") + ".",
            )
        if input.shape[0] == 0:
            raise LossInputError(f"Loss {name!r} got an empty batch.")
        if kind == "pairs" and input.shape[1] < 2:
            raise LossInputError(f"Loss {name!r} needs a query and a positive per row; got {input.shape[1]} item(s).",
                                 "Stack rows as (batch, 2 + hard_negatives, dim).")
        if kind == "scores":
            if target.shape != input.shape:
                raise LossInputError(
                    f"Loss {name!r} expects a multi-hot target of shape {tuple(input.shape)}; got {tuple(target.shape)}.",
                    "Pass one 0/1 column per label.",
                )
            return
        if target.ndim != 1 or target.shape[0] != input.shape[0]:
            raise LossInputError(
                f"Loss {name!r} expects integer labels of shape ({input.shape[0]},); got {tuple(target.shape)}.",
                "Pass class labels (embeddings) or document ids (pairs), one per row.",
            )
        if target.dtype.is_floating_point or target.dtype == torch.bool:
            raise LossInputError(f"Loss {name!r} expects integer labels; got dtype {target.dtype}.",
                                 "Convert with target.long().")

    def forward(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        self.check_inputs(input, target)
        for need in self.needs & CALL_NEEDS:
            if extras.get(need) is None:
                raise LossInputError(
                    f"Loss {self.info.name!r} needs {need!r} in each call.",
                    f"Call loss(input, target, {need}=...).",
                )
        values = self.per_sample(input, target, **extras)
        if self.info.batch_level or values.ndim == 0:
            return values
        if self.reduction == "mean":
            return values.mean()
        if self.reduction == "sum":
            return values.sum()
        return values

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        raise NotImplementedError

    def require_classes(self, input: torch.Tensor, minimum: int, hint: str) -> None:
        """Refuse inputs with fewer than ``minimum`` classes, naming the fix."""
        if input.shape[1] < minimum:
            raise LossInputError(
                f"Loss {self.info.name!r} needs at least {minimum} classes; got {input.shape[1]}.", hint
            )

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.params.items())


def outside(values: torch.Tensor, low: int, high: int) -> bool:
    """True when an integer tensor holds a value outside [low, high]: one host sync (the message's
    min and max are read only when there is an error to report)."""
    return bool(values.numel()) and bool(((values < low) | (values > high)).any())


def first_checkpoint(loss: nn.Module) -> int:
    """The first epoch at which ``loss`` is itself: a loss with a warm-up (``betti-matching``) declares
    ``first_checkpoint_epoch``; checkpoints, patience and conformance checks start there."""
    return int(getattr(loss, "first_checkpoint_epoch", 0))


def is_binary(input: torch.Tensor) -> bool:
    """True for two-logit inputs (binary tasks: class 1 is the positive class)."""
    return input.ndim == 2 and input.shape[1] == 2


def log_softmax_rows(input: torch.Tensor) -> torch.Tensor:
    """log_softmax over classes as z - logsumexp(z).

    Same values as ``torch.log_softmax(input, 1)``, but several times faster on CPU for the
    narrow (batch, K) inputs of classification (torch's softmax kernels vectorise over the
    class dimension, which is short here); see docs/performance.md.
    """
    return input - torch.logsumexp(input, dim=1, keepdim=True)


def softmax_rows(input: torch.Tensor) -> torch.Tensor:
    """softmax over classes, computed as exp(log_softmax_rows(input))."""
    return log_softmax_rows(input).exp()


def log_p_true(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log softmax(z)_y without materialising the whole log_softmax matrix."""
    return input.gather(1, target[:, None]).squeeze(1) - torch.logsumexp(input, dim=1)


def class_priors(class_counts: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Training class frequencies pi_k = n_k / n; empty classes count as one sample so log pi stays finite."""
    counts = torch.as_tensor(class_counts, dtype=dtype, device=device).clamp_min(1)
    return counts / counts.sum()
