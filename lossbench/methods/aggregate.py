"""Learning from aggregate responses: only bag-mean labels are seen in training; bag-level vs instance-level losses.

Source: Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate Responses: Instance Level versus Bag
Level Loss Functions", ICLR 2024 (https://openreview.net/forum?id=E60SIDItyT). Formulas as in the lossbench catalogue
§3.11 (derived from the abstract; no reference code was available).

Bags: at setup the training rows are shuffled with the trial's generator and cut into bags of ``bag_size`` rows
(the last bag may be smaller). Each bag's target is the mean one-hot label of its rows; instance labels are never read
in training. Validation (early stopping) and test use instance labels, as the paper evaluates instance predictions.

Batches: the loop still yields its seeded instance batches. Each bag has an *anchor* row (its first row); a batch
processes the bags whose anchor it contains, forwarding every row of those bags. So each bag is used exactly once per
epoch, in the loop's order, and a step forwards about ``batch_size`` rows, as plain training does. A batch without an
anchor makes no step.

Losses with p_i = softmax(f(x_i)), p̄_B = mean_{i∈B} p_i and ȳ_B the bag's mean one-hot label, averaged over rows
(a bag counts with its size, which equals the catalogue's 1/#bags form when all bags have the same size):

* ``ce`` (default): bag ``−Σ_k ȳ_Bk log p̄_Bk``; instance ``−Σ_k ȳ_Bk log p_ik``. For K = 2 this is BCE with the soft
  target ȳ_B on the mean probability (bag) or on each probability (instance).
* ``squared``: bag ``‖ȳ_B − p̄_B‖²``; instance ``‖ȳ_B − p_i‖²``; then ``L_inst = L_bag + within-bag variance``.

``agg-interp``: ``L_ρ = (1 − ρ)·L_bag + ρ·L_inst`` (for the squared loss, ``L_bag + ρ·within-bag variance``).
The base loss of the spec is not used (it needs instance labels); only ``ce`` is accepted as base.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.errors import SpecError
from lossbench.losses.base import Param
from lossbench.methods.base import Batch, Method, MethodContext, MethodInfo, StepState, register_method
from lossbench.methods.common import BOTH

CITATION = (
    "Javanmard et al., Learning from Aggregate Responses: Instance Level versus Bag Level Loss Functions, ICLR 2024"
)


def make_bags(n: int, bag_size: int, generator: torch.Generator | None) -> torch.Tensor:
    """Bag id of each training row: a seeded shuffle cut into consecutive bags of ``bag_size``."""
    order = torch.randperm(n, generator=generator)
    bag = torch.empty(n, dtype=torch.long)
    bag[order] = torch.arange(n) // bag_size
    return bag


def bag_targets(y: torch.Tensor, bag: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n_bags, K) mean one-hot label per bag: the only label information training sees."""
    n_bags = int(bag.max()) + 1
    sums = torch.zeros(n_bags, n_classes).index_add_(0, bag, F.one_hot(y, n_classes).float())
    return sums / torch.bincount(bag, minlength=n_bags).clamp_min(1)[:, None].float()


def _pointwise(target: torch.Tensor, prob: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "squared":
        return ((target - prob) ** 2).sum(dim=1)
    return -(target * prob.clamp_min(1e-12).log()).sum(dim=1)


def bag_level(prob: torch.Tensor, bag: torch.Tensor, target: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """Row-averaged ℓ(ȳ_B, p̄_B); ``bag`` holds compact ids 0..m−1 of the rows' bags, ``target`` is (m, K)."""
    m = target.shape[0]
    sizes = torch.bincount(bag, minlength=m).to(prob.dtype)
    mean = torch.zeros(m, prob.shape[1], dtype=prob.dtype, device=prob.device).index_add(0, bag, prob) / sizes[:, None]
    return (sizes * _pointwise(target, mean, kind)).sum() / sizes.sum()


def instance_level(prob: torch.Tensor, bag: torch.Tensor, target: torch.Tensor, kind: str = "ce") -> torch.Tensor:
    """Row-averaged ℓ(ȳ_B, p_i)."""
    return _pointwise(target[bag], prob, kind).mean()


class _Aggregate(Method):
    rho_default: float = 0.0

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.bag: torch.Tensor | None = None
        self.targets: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None
        self.members: list[torch.Tensor] = []
        self.X: torch.Tensor | None = None

    def weight(self) -> float:
        """ρ: the share of the instance-level loss."""
        return float(self.params.get("rho", self.rho_default))

    def setup(
        self, model: nn.Module, prepared: Any, loss: nn.Module, state: StepState, context: MethodContext | None = None
    ) -> None:
        base = getattr(getattr(loss, "info", None), "name", "ce")
        if base != "ce":
            raise SpecError(f"Method {self.info.name!r} uses bag labels only and takes no base loss; got base={base}.")
        y = prepared.train.y.cpu()
        self.bag = make_bags(len(y), int(self.params["bag_size"]), state.generator)
        self.targets = bag_targets(y, self.bag, prepared.n_classes).to(prepared.train.X.device)
        n_bags = self.targets.shape[0]
        order = torch.argsort(self.bag, stable=True)
        self.members = list(torch.split(order, torch.bincount(self.bag, minlength=n_bags).tolist()))
        self.anchor = torch.full((len(y),), -1, dtype=torch.long)
        for b, rows in enumerate(self.members):
            self.anchor[rows[0]] = b
        self.X = prepared.train.X

    def bags_of(self, batch: Batch) -> torch.Tensor:
        assert self.anchor is not None
        ids = self.anchor[batch.index.cpu()]
        return ids[ids >= 0]

    def objective(self, prob: torch.Tensor, local_bag: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kind = str(self.params["loss"])
        rho = self.weight()
        value = prob.new_zeros(())
        if rho < 1:
            value = value + (1 - rho) * bag_level(prob, local_bag, target, kind)
        if rho > 0:
            value = value + rho * instance_level(prob, local_bag, target, kind)
        return value

    def step(self, model: nn.Module, batch: Batch, loss: nn.Module, state: StepState) -> torch.Tensor:
        assert self.targets is not None
        bags = self.bags_of(batch)
        rows = torch.cat([self.members[int(b)] for b in bags])
        local = torch.cat([torch.full((len(self.members[int(b)]),), j, dtype=torch.long) for j, b in enumerate(bags)])
        assert self.X is not None
        dev = self.X.device
        prob = F.softmax(model(self.X[rows.to(dev)]), dim=1)
        return self.objective(prob, local.to(dev), self.targets[bags.to(dev)])

    def update(
        self, model: nn.Module, batch: Batch, loss: nn.Module, optimizer: torch.optim.Optimizer, state: StepState
    ) -> float:
        if len(self.bags_of(batch)) == 0:
            return 0.0  # no bag is anchored in this batch: nothing to learn from
        return super().update(model, batch, loss, optimizer, state)


def _params(with_rho: bool) -> dict[str, Param]:
    params = {
        "bag_size": Param(8, "rows per bag (k)", low=1, high=100_000),
        "loss": Param("ce", "pointwise loss on probabilities", choices=("ce", "squared")),
    }
    if with_rho:
        params["rho"] = Param(0.5, "interpolation: 0 = bag level, 1 = instance level", low=0.0, high=1.0)
    return params


@register_method
class AggBag(_Aggregate):
    """Bag-level loss: the bag's mean prediction against the bag's mean label."""

    info = MethodInfo(name="agg-bag", family="aggregate", tasks=BOTH, params=_params(False), citation=CITATION,
                      summary="Aggregate labels: loss of the bag-mean prediction vs the bag-mean label.")
    rho_default = 0.0


@register_method
class AggInstance(_Aggregate):
    """Instance-level loss: every row's prediction against its bag's mean label."""

    info = MethodInfo(name="agg-instance", family="aggregate", tasks=BOTH, params=_params(False), citation=CITATION,
                      summary="Aggregate labels: each row's prediction vs its bag-mean label.")
    rho_default = 1.0


@register_method
class AggInterp(_Aggregate):
    """(1 − ρ)·bag-level + ρ·instance-level."""

    info = MethodInfo(name="agg-interp", family="aggregate", tasks=BOTH, params=_params(True), citation=CITATION,
                      summary="Aggregate labels: interpolation between bag- and instance-level losses.")


__all__ = ["AggBag", "AggInstance", "AggInterp", "bag_level", "bag_targets", "instance_level", "make_bags"]
