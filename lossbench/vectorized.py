"""Seed-vectorised training: every seed of one (dataset, objective, configuration) trained as one stacked MLP.

Small tabular MLPs leave a CPU core mostly idle inside each tiny matmul and spend much of a step
in Python and dispatch overhead (one optimiser step per parameter tensor, one autograd graph per
step). Stacking S seeds turns S small steps into one batched step: ``baddbmm`` over per-seed
weights, one backward, one optimiser step over stacked tensors.

Each seed keeps exactly what the per-seed path gives it: its split and preprocessing (its own
``Prepared``), its initial weights (copied from the model built from the seed's ``init`` stream),
its loss instance (built with its own context), its batch order (``batch_order(n, seed, epoch)``),
its dropout masks (a generator per seed on its `dropout` stream, which the per-seed path seeds the global RNG
from) and its early stopping. Losses see one seed's slice at a time, so batch-dependent losses are
fine; a loss with per-sample state declares ``info.vectorizable = False`` and its seeds run one by one.

Adam, AdamW and SGD are element-wise, so one optimiser over stacked tensors takes the same step
for every seed as S optimisers would. A seed that stops early is masked out of the objective;
its weights are restored from its best epoch at the end, so what happens to them afterwards
cannot change its result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.config import TrainingConfig
from lossbench.losses.base import LossBase, first_checkpoint
from lossbench.methods.base import Batch, Method
from lossbench.metrics import METRICS
from lossbench.models.mlp import MLP
from lossbench.tasks.base import Prepared, TaskType
from lossbench.train import TrainResult, fit, make_optimizer, step_state


def member_reason(loss: nn.Module, method: Method) -> str | None:
    """Why a trial cannot be a member of any stack (None when it can); it is then trained alone.

    A loss with per-sample state (``info.vectorizable = False``: ``aldr-kl`` indexes its state by row) and a
    method with its own ``update`` or ``step`` (mixup, distillation, ...) need their own model and loop.
    """
    info = getattr(type(loss), "info", None)
    if info is None or not info.vectorizable:
        return f"loss {getattr(info, 'name', type(loss).__name__)} opts out"
    if not method.info.vectorizable or type(method).update is not Method.update or type(method).step is not Method.step:
        return f"method {method.info.name} opts out"
    return None


def unsupported_reason(models: Sequence[nn.Module], prepared: Sequence[Prepared], losses: Sequence[nn.Module],
                       methods: Sequence[Method]) -> str | None:
    """Why these members cannot be trained stacked (None when they can); each is then trained alone."""
    if len(models) < 2:
        return "a single member"
    if not all(type(m) is MLP for m in models):
        return "only the tabular MLP is stacked"
    if len({m.activation for m in models}) != 1:
        return "the seeds' models differ in activation"
    if any(isinstance(layer, nn.BatchNorm1d) for layer in models[0]):
        return "batch norm keeps running statistics per model"
    shapes = [[tuple(p.shape[:1]) for p in m.parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        return "the members' models differ in shape"
    if len({len(p.train) for p in prepared}) != 1:
        return "the members' training splits differ in size"
    if len({p.train.X.device for p in prepared}) != 1:
        return "the members' data live on different devices"
    for loss, method in zip(losses, methods, strict=True):
        reason = member_reason(loss, method)
        if reason is not None:
            return reason
    return None


class StackedLinear(torch.autograd.Function):
    """``bias + x @ W`` for every member at once, each of its three batched products in the layout that is fast.

    ``weight`` is ``(S, in, out)``, or ``(S, out, in)`` when ``out_major`` (as ``nn.Linear`` keeps it). A layer
    that narrows (the logits: 128 → 2) is stored out-major: MKL's batched product with a two-column right-hand
    side, and the weight gradient ``xᵀg`` with two columns, take 3–5 times as long as the same products with
    the narrow side on the left (docs/performance.md, "Each batched product in its fast layout"). Autograd's
    own ``baddbmm`` backward would compute the weight gradient in the slow layout whatever the storage, hence
    this function.
    """

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, out_major: bool) -> torch.Tensor:
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2) if out_major else weight)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        x, weight, _, out_major = inputs
        ctx.save_for_backward(x, weight)
        ctx.out_major = out_major

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad, weight if ctx.out_major else weight.transpose(1, 2))
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(grad.transpose(1, 2), x) if ctx.out_major else torch.bmm(x.transpose(1, 2), grad)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(1)
        return grad_x, grad_w, grad_b, None


class StackedMLP(nn.Module):
    """S MLPs of one architecture as stacked weights; inputs are ``(S, batch, features)``.

    A layer's weights are ``(S, in, out)``, or ``(S, out, in)`` for a layer that narrows (``out_major``, see
    :class:`StackedLinear`): in either layout every batched product takes them as they are and their gradient
    comes out contiguous (with the wrong one, backward spent much of its time copying transposed gradients).

    Seeds whose preprocessing gave fewer features are zero-padded: a zero input column gives its
    weight row a zero gradient, so Adam/SGD never move it and the padded model computes the same function.
    """

    def __init__(self, models: Sequence[MLP]) -> None:
        super().__init__()
        linears = [[layer for layer in m if isinstance(layer, nn.Linear)] for m in models]
        drops = [layer for layer in models[0] if isinstance(layer, nn.Dropout)]
        self.dropout = float(drops[0].p) if drops else 0.0
        self.activation = torch.tanh if models[0].activation == "tanh" else torch.relu
        self.n_in = max(ls[0].in_features for ls in linears)
        self.n_features = [ls[0].in_features for ls in linears]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.out_major: list[bool] = []
        for i in range(len(linears[0])):
            ws = []
            out_major = linears[0][i].out_features < linears[0][i].in_features
            for ls in linears:
                w = ls[i].weight.detach()  # (out, in)
                if i == 0 and w.shape[1] < self.n_in:
                    w = F.pad(w, (0, self.n_in - w.shape[1]))
                ws.append(w if out_major else w.t())
            self.out_major.append(out_major)
            self.weights.append(nn.Parameter(torch.stack(ws).clone()))
            self.biases.append(nn.Parameter(torch.stack([ls[i].bias.detach() for ls in linears]).clone()))

    def weight_in_out(self, i: int, s: int) -> torch.Tensor:
        """Layer ``i``'s weight of member ``s`` as ``(in, out)`` (a view)."""
        w = self.weights[i][s]
        return w.t() if self.out_major[i] else w

    def forward(self, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = StackedLinear.apply(h, w, b, self.out_major[i])
            if i == last:
                break
            h = self.activation(h)
            if self.training and self.dropout > 0:
                h = h * self.dropout_mask(h, generators)
        return h

    def dropout_mask(self, h: torch.Tensor, generators: Sequence[torch.Generator] | None) -> torch.Tensor:
        # nn.Dropout on CPU draws bernoulli_(1 - p) on a tensor of the input's shape from the global
        # generator; drawing the same way from each seed's generator gives each seed its per-seed masks.
        # (Drawn on the CPU, where the generators live: on a GPU the masks are per-seed but not the fused kernel's.)
        keep = 1.0 - self.dropout
        masks = [torch.empty(h.shape[1:], dtype=h.dtype).bernoulli_(keep, generator=g)
                 for g in (generators or [None] * h.shape[0])]  # type: ignore[list-item]
        return torch.stack(masks).div_(keep).to(h.device)

    def seed_state(self, s: int) -> list[torch.Tensor]:
        return [p[s].detach().clone() for p in [*self.weights, *self.biases]]

    def export(self, s: int, state: list[torch.Tensor], model: MLP) -> None:
        """Load seed ``s``'s weights (from ``seed_state``) into its own per-seed MLP, padding removed."""
        n = len(self.weights)
        linears = [layer for layer in model if isinstance(layer, nn.Linear)]
        with torch.no_grad():
            for i, layer in enumerate(linears):
                w = state[i] if self.out_major[i] else state[i].t()  # (out, in)
                layer.weight.copy_(w[:, : self.n_features[s]] if i == 0 else w)
                layer.bias.copy_(state[n + i])


class SeedView(nn.Module):
    """Seed ``s`` of a stacked model as an ordinary ``(batch, features) -> logits`` module, in eval mode.

    Uses ``addmm`` like ``nn.Linear``, so validation scores match the per-seed model's.
    """

    def __init__(self, stacked: StackedMLP, s: int) -> None:
        super().__init__()
        self.stacked, self.s = stacked, s
        self.train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st, s = self.stacked, self.s
        h = x
        if x.shape[1] < st.n_in:
            h = F.pad(x, (0, st.n_in - x.shape[1]))
        last = len(st.weights) - 1
        for i, b in enumerate(st.biases):
            h = torch.addmm(b[s], h, st.weight_in_out(i, s))  # what F.linear computes: bias + x @ weight.T
            if i < last:
                h = st.activation(h)
        return h


def shared_loss(losses: Sequence[nn.Module]) -> LossBase | None:
    """One of ``losses`` when a single call over every member's rows gives each member's loss, else None.

    True for a per-sample loss (not batch-dependent) with no context, no state and no trainable tensors,
    whose members all have the same class and parameters: ``ce``, ``focal``, ``label-smoothing``, ...
    A loss built from a seed's training split (``weighted-ce``: class counts) is called per member.
    """
    first = losses[0]
    if not isinstance(first, LossBase) or first.reduction not in ("mean", "sum"):
        return None
    info = first.info
    if info.batch_dependent or info.batch_level or first.needs or any(True for _ in first.parameters()) \
            or any(True for _ in first.buffers()):
        return None
    if any(type(loss) is not type(first) or loss.params != first.params  # type: ignore[attr-defined]
           or loss.reduction != first.reduction for loss in losses):  # type: ignore[attr-defined]
        return None
    return first


def loss_groups(losses: Sequence[nn.Module]) -> list[tuple[LossBase | None, list[int]]]:
    """The members, grouped so that one call serves a group: ``(loss, members)`` for a group of members
    sharing one per-sample form (``shared_loss``), ``(None, [s])`` for a member whose loss is called on its own."""
    groups: dict[Any, list[int]] = {}
    for s, loss in enumerate(losses):
        key: Any = ("alone", s)
        if shared_loss([loss]) is not None:
            key = (type(loss), repr(sorted(loss.params.items())), loss.reduction)  # type: ignore[attr-defined]
        groups.setdefault(key, []).append(s)
    return [(shared_loss([losses[m] for m in members]), members) for members in groups.values()]


def shared_objective(loss: LossBase, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's loss ``(S,)`` from one call on the flattened ``(S * batch, classes)`` logits."""
    flat_logits, flat_y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
    loss.check_inputs(flat_logits, flat_y)
    per_sample = loss.per_sample(flat_logits, flat_y).view(y.shape)
    return per_sample.mean(1) if loss.reduction == "mean" else per_sample.sum(1)


def stacked_split(parts: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    return torch.stack([F.pad(p, (0, width - p.shape[1])) if p.shape[1] < width else p for p in parts])


class StackedLearner:
    """The seeds of one stack as one stacked MLP, for :func:`lossbench.train.fit`.

    Each member keeps its own loss, method (``plain``: it only supplies the loss's call extras), step state and
    dropout generator; a member that stopped is left out of the objective.
    """

    def __init__(self, task: TaskType, models: Sequence[MLP], prepared: Sequence[Prepared],
                 losses: Sequence[nn.Module], methods: Sequence[Method], generators: Sequence[torch.Generator],
                 training: TrainingConfig, seeds: Sequence[int], primary_metric: str) -> None:
        self.task, self.models, self.prepared, self.losses, self.methods = task, models, prepared, losses, methods
        self.generators, self.seeds, self.primary_metric = generators, list(seeds), primary_metric
        self.states = [step_state(seed) for seed in seeds]
        self.stacked = StackedMLP(models)
        loss_params = [p for loss in losses for p in loss.parameters() if p.requires_grad]
        self.optimizer = make_optimizer([p for p in [*self.stacked.parameters(), *loss_params] if p.requires_grad],
                                        training)
        self.groups = loss_groups(losses)
        self.views = [SeedView(self.stacked, s) for s in range(len(models))]
        S = len(models)
        X = stacked_split([p.train.X for p in prepared], self.stacked.n_in)  # (S, n, F)
        y = torch.stack([p.train.y for p in prepared])  # (S, n)
        self.n_rows, self.n_in = X.shape[1], X.shape[2]
        self.X_flat, self.y_flat = X.reshape(S * self.n_rows, -1), y.reshape(-1)
        self.offsets = (torch.arange(S, device=X.device) * self.n_rows)[:, None]
        # Every seed's validation split in one stacked forward per epoch, when the task predicts from outputs alone
        # and the splits' sizes agree (they do for the same split fractions). Otherwise each seed's view is evaluated.
        vals = [p.val for p in prepared]
        same_size = all(v is not None for v in vals) and len({len(v) for v in vals}) == 1  # type: ignore[arg-type]
        self.X_val = (stacked_split([v.X for v in vals], self.stacked.n_in)  # type: ignore[union-attr]
                      if same_size and task.predicts_from_outputs else None)

    def train_mode(self) -> None:
        self.stacked.train()

    def step(self, idx: torch.Tensor, members: list[int]) -> list[float]:
        S, st = len(self.seeds), self.stacked
        flat = (idx.to(self.X_flat.device) + self.offsets).reshape(-1)
        xb = self.X_flat.index_select(0, flat).view(S, -1, self.n_in)  # one gather for all seeds
        yb = self.y_flat.index_select(0, flat).view(S, -1)
        self.optimizer.zero_grad(set_to_none=True)
        logits = st(xb, self.generators)
        active = set(members)
        values: dict[int, torch.Tensor] = {}
        for shared, group in self.groups:
            group = [s for s in group if s in active]
            if not group:
                continue
            if shared is not None:  # one call over every row of the group's members
                rows = group if len(group) == S else torch.tensor(group, device=logits.device)
                values.update(zip(group, shared_objective(shared, logits[rows], yb[rows]).unbind(), strict=True))
                continue
            (s,) = group
            batch = Batch(xb[s, :, : st.n_features[s]], yb[s], idx[s])
            extras = self.methods[s].loss_kwargs(self.losses[s], batch, self.states[s])
            values[s] = self.losses[s](logits[s], yb[s], **extras)
        objective = torch.stack([values[s] for s in members])
        read = objective.detach().tolist()  # one host sync for every seed
        finite = [math.isfinite(v) for v in read]
        # seeds share no weights: each slice's gradient is its own loss's; a diverged seed is left out
        if all(finite):
            objective.sum().backward()
        elif any(finite):
            objective[torch.tensor(finite, device=objective.device)].sum().backward()
        if any(finite):
            self.optimizer.step()
        return read

    def validate(self, members: list[int]) -> dict[int, float]:
        outputs = None
        if self.X_val is not None and members:
            self.stacked.eval()
            with torch.no_grad():
                outputs = self.stacked(self.X_val)
        scores = {}
        for s in members:
            val = self.prepared[s].val
            if val is None:
                continue
            given = None if outputs is None else self.task.from_outputs(outputs[s], val)
            scores[s] = self.task.evaluate(self.views[s], self.prepared[s], "val", (self.primary_metric,),
                                           given)[self.primary_metric]
        return scores

    def first_epoch(self, s: int) -> int:
        return first_checkpoint(self.losses[s])

    def snapshot(self, s: int) -> list[torch.Tensor]:
        return self.stacked.seed_state(s)

    def finish(self, s: int, checkpoint: Any) -> None:
        self.stacked.export(s, checkpoint if checkpoint is not None else self.stacked.seed_state(s), self.models[s])


def train_stacked(
    task: TaskType,
    models: Sequence[MLP],
    prepared: Sequence[Prepared],
    losses: Sequence[nn.Module],
    methods: Sequence[Method],
    generators: Sequence[torch.Generator],
    *,
    training: TrainingConfig,
    seeds: Sequence[int],
    primary_metric: str,
    deadline: float | None = None,
) -> list[TrainResult | Exception]:
    """Train every seed's model in place, stacked; each entry is that seed's result or its failure.

    ``generators[s]`` holds the global RNG state the per-seed path would start training from.
    """
    learner = StackedLearner(task, models, prepared, losses, methods, generators, training, seeds, primary_metric)
    return fit(learner, training, METRICS.get(primary_metric).greater_is_better, primary_metric, deadline)
