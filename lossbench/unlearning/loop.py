"""The unlearning loop: a fixed budget of steps, each on one forget batch and one retain batch.

The batch sequence is a function of (seed, set sizes, batch size) only, so every method of a seed sees the same
batches in the same order. Steps run with the model in eval mode: batch-norm statistics stay those of pre-training
and dropout is off, so the objectives see the function that is evaluated (NPO's ratio to the reference is exactly 1
at step 0). A non-finite objective (gradient ascent's collapse) stops the loop and restores the last weights whose
objective was finite; the step is recorded.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lossbench import streams
from lossbench.errors import UserError
from lossbench.unlearning.objectives import Objective, Rows, UnlearningData


@dataclass
class UnlearnResult:
    steps_run: int
    setup_s: float  # the objective's own preparation (LAF's VAEs, ...), included in unlearn_s
    unlearn_s: float
    diverged_at: int | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)  # {"step", "objective", **evaluate(model)}
    # unlearn_s excludes the time spent in ``evaluate`` for the curve


def batch_schedule(n: int, batch_size: int, steps: int, seed: int, which: str) -> list[torch.Tensor]:
    """``steps`` batches of positions in ``range(n)``: passes over fresh permutations of the seed's stream for
    ``which`` set ("forget" or "retain"), concatenated."""
    size = min(batch_size, n)
    g = streams.generator(seed, "unlearn_order", which)
    need = steps * size
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))])
    return [order[i * size : (i + 1) * size] for i in range(steps)]


def make_data(model: nn.Module, forget: Rows, retain: Rows, budget: int, seed: int,
              predicted_oracle: dict[str, torch.Tensor] | None = None) -> UnlearningData:
    """The objective's view of a trial: a frozen copy of ``model`` as the reference and a seeded generator."""
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    return UnlearningData(forget=forget, retain=retain, reference=reference, budget=budget,
                          generator=streams.generator(seed, "method"), predicted_oracle=predicted_oracle)


def unlearn(
    model: nn.Module,
    objective: Objective,
    data: UnlearningData,
    *,
    batch_size: int = 64,
    seed: int = 0,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    curve_every: int = 0,
) -> UnlearnResult:
    """Run ``data.budget`` steps of ``objective`` on ``model`` in place."""
    steps = data.budget
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserError(f"The unlearning budget must be a positive number of steps. Got {steps!r}.",
                        "Set the budget to at least 1 (for example 100).")
    if len(data.forget) == 0 or len(data.retain) == 0:
        raise UserError("Unlearning needs at least one forget row and one retain row.",
                        "Choose a forget fraction strictly between 0 and 1, or a class that is not the only one.")
    start = time.perf_counter()
    model.eval()
    objective.setup(model, data)
    setup_s = time.perf_counter() - start
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=objective.lr)
    forget_batches = batch_schedule(len(data.forget), batch_size, steps, seed, "forget")
    retain_batches = batch_schedule(len(data.retain), batch_size, steps, seed, "retain")

    result = UnlearnResult(steps_run=0, setup_s=setup_s, unlearn_s=0.0)
    eval_s = 0.0

    def point(step: int, value: float) -> None:
        nonlocal eval_s
        if evaluate is not None:
            t0 = time.perf_counter()
            result.curve.append({"step": step, "objective": value, **evaluate(model)})
            model.eval()
            eval_s += time.perf_counter() - t0

    point(0, math.nan)
    previous = copy.deepcopy(model.state_dict())
    for step in range(steps):
        before = copy.deepcopy(model.state_dict())
        value = objective.update(model, data.forget.take(forget_batches[step]), data.retain.take(retain_batches[step]),
                                 optimizer, step)
        if not math.isfinite(value):
            model.load_state_dict(previous)  # ``before`` already gave a non-finite objective
            result.diverged_at = step
            break
        previous = before
        result.steps_run = step + 1
        if curve_every and result.steps_run % curve_every == 0 and result.steps_run < steps:
            point(result.steps_run, value)
    point(result.steps_run, value)
    result.unlearn_s = time.perf_counter() - start - eval_s  # the curve's evaluations are not the method's cost
    return result
