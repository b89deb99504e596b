"""Seed-vectorised training: every seed of one (dataset, loss) cell trained as one stacked MLP.

Small tabular MLPs leave a CPU core mostly idle inside each tiny matmul and spend much of a step
in Python and dispatch overhead (one optimiser step per parameter tensor, one autograd graph per
step). Stacking S seeds turns S small steps into one batched step: ``baddbmm`` over per-seed
weights, one backward, one optimiser step over stacked tensors.

Each seed keeps exactly what the per-seed path gives it: its split and preprocessing (its own
``Prepared``), its initial weights (copied from the model built after ``torch.manual_seed(seed)``),
its loss instance (built with its own context), its batch order (``batch_order(n, seed, epoch)``),
its dropout masks (a generator per seed, in the global RNG's state where the per-seed path would
start) and its early stopping. Losses see one seed's slice at a time, so batch-dependent losses are
fine; a loss with per-sample state declares ``info.vectorizable = False`` and its cell runs per seed.

Adam, AdamW and SGD are element-wise, so one optimiser over stacked tensors takes the same step
for every seed as S optimisers would. A seed that stops early is masked out of the objective;
its weights are restored from its best epoch at the end, so what happens to them afterwards
cannot change its result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lossbench.config import TrainingConfig
from lossbench.losses.base import LossBase, first_checkpoint
from lossbench.methods.base import Batch, Method
from lossbench.metrics import METRICS
from lossbench.models.mlp import MLP
from lossbench.tasks.base import Prepared, TaskType
from lossbench.train import Diverged, TrainResult, TrialTimeout, batch_order, make_optimizer, step_state


def unsupported_reason(models: Sequence[nn.Module], prepared: Sequence[Prepared], losses: Sequence[nn.Module],
                       methods: Sequence[Method]) -> str | None:
    """Why this cell cannot be trained stacked (None when it can); the runner then trains each seed alone."""
    if len(models) < 2:
        return "a single seed"
    if not all(type(m) is MLP for m in models):
        return "only the tabular MLP is stacked"
    if any(isinstance(layer, nn.BatchNorm1d) for layer in models[0]):
        return "batch norm keeps running statistics per model"
    shapes = [[tuple(p.shape[:1]) for p in m.parameters()] for m in models]
    if any(s != shapes[0] for s in shapes):
        return "the seeds' models differ in shape"
    if len({len(p.train) for p in prepared}) != 1:
        return "the seeds' training splits differ in size"
    if len({p.train.X.device for p in prepared}) != 1:
        return "the seeds' data live on different devices"
    for loss in losses:
        if not getattr(type(loss), "info", None) or not type(loss).info.vectorizable:
            return f"loss {getattr(getattr(type(loss), 'info', None), 'name', type(loss).__name__)} opts out"
    for method in methods:
        if not method.info.vectorizable or type(method).update is not Method.update \
                or type(method).step is not Method.step:
            return f"method {method.info.name} opts out"
    return None


class StackedMLP(nn.Module):
    """S MLPs of one architecture as stacked, transposed weights ``(S, in, out)``; inputs are ``(S, batch, features)``.

    Transposed so that ``baddbmm`` takes them as they are and their gradient comes out contiguous
    (with ``(S, out, in)`` weights, backward spent much of its time copying transposed gradients).

    Seeds whose preprocessing gave fewer features are zero-padded: a zero input column gives its
    weight row a zero gradient, so Adam/SGD never move it and the padded model computes the same function.
    """

    def __init__(self, models: Sequence[MLP]) -> None:
        super().__init__()
        linears = [[layer for layer in m if isinstance(layer, nn.Linear)] for m in models]
        drops = [layer for layer in models[0] if isinstance(layer, nn.Dropout)]
        self.dropout = float(drops[0].p) if drops else 0.0
        self.n_in = max(ls[0].in_features for ls in linears)
        self.n_features = [ls[0].in_features for ls in linears]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i in range(len(linears[0])):
            ws = []
            for ls in linears:
                w = ls[i].weight.detach()
                if i == 0 and w.shape[1] < self.n_in:
                    w = F.pad(w, (0, self.n_in - w.shape[1]))
                ws.append(w.t())
            self.weights.append(nn.Parameter(torch.stack(ws).clone()))
            self.biases.append(nn.Parameter(torch.stack([ls[i].bias.detach() for ls in linears]).clone()))

    def forward(self, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w)
            if i == last:
                break
            h = torch.relu(h)
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
                w = state[i].t()
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
        for i, (w, b) in enumerate(zip(st.weights, st.biases, strict=True)):
            h = torch.addmm(b[s], h, w[s])  # what F.linear computes for nn.Linear: bias + x @ weight.T
            if i < last:
                h = torch.relu(h)
        return h


def shared_loss(losses: Sequence[nn.Module]) -> LossBase | None:
    """One of ``losses`` when a single call over every seed's rows gives each seed's loss, else None.

    True for a per-sample loss (not batch-dependent) with no context, no state and no trainable tensors,
    whose seeds all have the same class and parameters: ``ce``, ``focal``, ``label-smoothing``, ...
    A loss built from a seed's training split (``weighted-ce``: class counts) is called per seed.
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


def shared_objective(loss: LossBase, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each seed's loss ``(S,)`` from one call on the flattened ``(S * batch, classes)`` logits."""
    flat_logits, flat_y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
    loss.check_inputs(flat_logits, flat_y)
    per_sample = loss.per_sample(flat_logits, flat_y).view(y.shape)
    return per_sample.mean(1) if loss.reduction == "mean" else per_sample.sum(1)


def stacked_split(parts: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    return torch.stack([F.pad(p, (0, width - p.shape[1])) if p.shape[1] < width else p for p in parts])


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
    epochs, batch_size, patience = training.epochs, training.batch_size, training.patience
    S = len(models)
    stacked = StackedMLP(models)
    loss_params = [p for loss in losses for p in loss.parameters() if p.requires_grad]
    params = [p for p in [*stacked.parameters(), *loss_params] if p.requires_grad]
    optimizer = make_optimizer(params, training)
    states = [step_state(seed) for seed in seeds]

    sign = 1.0 if METRICS.get(primary_metric).greater_is_better else -1.0
    shared = shared_loss(losses)
    results: list[TrainResult | Exception] = [TrainResult() for _ in range(S)]
    best_score = [-math.inf] * S
    best_state: list[list[torch.Tensor] | None] = [None] * S
    stale = [0] * S
    active = [True] * S
    views = [SeedView(stacked, s) for s in range(S)]

    X = stacked_split([p.train.X for p in prepared], stacked.n_in)  # (S, n, F)
    y = torch.stack([p.train.y for p in prepared])  # (S, n)
    n = X.shape[1]
    X_flat, y_flat = X.reshape(S * n, -1), y.reshape(-1)
    offsets = (torch.arange(S, device=X.device) * n)[:, None]
    # Every seed's validation split in one stacked forward per epoch, when the task predicts from outputs alone
    # and the splits' sizes agree (they do for the same split fractions). Otherwise each seed's view is evaluated.
    vals = [p.val for p in prepared]
    same_size = all(v is not None for v in vals) and len({len(v) for v in vals}) == 1  # type: ignore[arg-type]
    stack_val = same_size and task.predicts_from_outputs
    X_val = stacked_split([v.X for v in vals], stacked.n_in) if stack_val else None  # type: ignore[union-attr]
    start = time.perf_counter()
    for epoch in range(epochs):
        if not any(active):
            break
        stacked.train()
        for st in states:
            st.epoch = epoch
        orders = torch.stack([batch_order(n, seed, epoch) for seed in seeds])  # (S, n): each seed's permutation
        totals = [0.0] * S
        count = 0
        for begin in range(0, n, batch_size):
            idx = orders[:, begin : begin + batch_size]
            if idx.shape[1] < 2 and n >= 2:
                continue  # the per-seed loop drops a trailing 1-row batch too
            if deadline is not None and time.monotonic() > deadline:
                raise TrialTimeout(f"trial ran past its time limit in epoch {epoch}")
            flat = (idx.to(X.device) + offsets).reshape(-1)
            xb = X_flat.index_select(0, flat).view(S, -1, X.shape[2])  # one gather for all seeds
            yb = y_flat.index_select(0, flat).view(S, -1)
            seeds_on = [s for s in range(S) if active[s]]  # a stopped seed is masked: its best epoch is restored
            if not seeds_on:
                break  # every seed diverged in this epoch
            optimizer.zero_grad(set_to_none=True)
            logits = stacked(xb, generators)
            if shared is not None:
                objective = shared_objective(shared, logits, yb)
                objective = objective if len(seeds_on) == S else objective[seeds_on]
            else:
                values = []
                for s in seeds_on:
                    batch = Batch(xb[s, :, : stacked.n_features[s]], yb[s], idx[s])
                    values.append(losses[s](logits[s], yb[s], **methods[s].loss_kwargs(losses[s], batch, states[s])))
                objective = torch.stack(values)
            read = objective.detach().tolist()  # one host sync for every seed
            finite = [math.isfinite(v) for v in read]
            for s, v, ok in zip(seeds_on, read, finite, strict=True):
                if not ok:
                    results[s] = Diverged(f"training objective became {v} at epoch {epoch}, step {states[s].step}")
                    active[s] = False
                else:
                    totals[s] += v * idx.shape[1]
            # seeds share no weights: each slice's gradient is its own loss's; a diverged seed is left out
            if all(finite):
                objective.sum().backward()
            elif any(finite):
                objective[torch.tensor(finite, device=objective.device)].sum().backward()
            if any(finite):
                optimizer.step()
            count += idx.shape[1]
            for s in range(S):
                states[s].step += 1
        outputs = None
        if X_val is not None and any(active):
            stacked.eval()
            with torch.no_grad():
                outputs = stacked(X_val)
        for s in range(S):
            if not active[s]:
                continue
            res = results[s]
            assert isinstance(res, TrainResult)
            res.epochs_run = epoch + 1
            res.curves.append({"split": "train", "metric": "loss", "step": epoch, "value": totals[s] / max(count, 1)})
            if prepared[s].val is None:
                continue
            given = None if outputs is None else task.from_outputs(outputs[s], prepared[s].val)  # type: ignore[arg-type]
            score = task.evaluate(views[s], prepared[s], "val", (primary_metric,), given)[primary_metric]
            res.curves.append({"split": "val", "metric": primary_metric, "step": epoch, "value": score})
            if epoch < first_checkpoint(losses[s]):  # as in train.train
                continue
            if math.isfinite(score) and sign * score > best_score[s]:
                best_score[s], res.best_epoch, stale[s] = sign * score, epoch, 0
                best_state[s] = stacked.seed_state(s)
            else:
                stale[s] += 1
                if patience and stale[s] >= patience:
                    active[s] = False
    elapsed = time.perf_counter() - start
    for s in range(S):
        res = results[s]
        if not isinstance(res, TrainResult):
            continue
        state = best_state[s]
        if state is None:
            state = stacked.seed_state(s)
            res.best_epoch = res.epochs_run - 1
        stacked.export(s, state, models[s])
        res.train_s = elapsed / S  # the cell's training time, shared equally among its seeds
    return results

