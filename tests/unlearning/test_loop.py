"""The unlearning loop: budget errors, paired batches, eval mode, divergence handling, the utility curve."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lossbench.errors import UserError
from lossbench.losses.base import Param
from lossbench.unlearning import make_objective
from lossbench.unlearning.loop import batch_schedule, unlearn
from lossbench.unlearning.objectives import Objective, ObjectiveInfo, Rows, rows
from tests.unlearning.helpers import copy_model, data_for, problem


class Spy(Objective):
    """Records what each step sees; its value turns infinite at step ``blow_up``."""

    info = ObjectiveInfo(name="spy", summary="", formula="", params={"lr": Param(1e-2, "")}, citation="",
                         uses=frozenset({"forget_labels"}))

    def __init__(self, blow_up: int = -1) -> None:
        super().__init__()
        self.blow_up = blow_up
        self.seen: list[tuple[list[int], list[int]]] = []
        self.training: list[bool] = []

    def loss(self, model: nn.Module, forget: Rows, retain: Rows) -> torch.Tensor:
        return -nn.functional.cross_entropy(model(forget.x), forget.y)

    def update(self, model: nn.Module, forget: Rows, retain: Rows, optimizer: torch.optim.Optimizer,
               step: int) -> float:
        self.seen.append((forget.index.tolist(), retain.index.tolist()))
        self.training.append(model.training)
        value = super().update(model, forget, retain, optimizer, step)
        return math.inf if step == self.blow_up else value


@pytest.mark.parametrize("budget", [0, -3, 2.5, True])
def test_a_budget_below_one_step_is_refused(budget: object) -> None:
    model, forget, retain = problem()
    data = data_for(model, forget, retain)
    data.budget = budget  # type: ignore[assignment]
    with pytest.raises(UserError, match="budget must be a positive number of steps") as err:
        unlearn(model, Spy(), data)
    assert err.value.hint


def test_empty_forget_set_is_refused() -> None:
    model, _, retain = problem()
    empty = rows(retain.x[:0], retain.y[:0])
    with pytest.raises(UserError, match="at least one forget row"):
        unlearn(model, Spy(), data_for(model, empty, retain, predicted=False))


def test_batch_schedule_covers_every_row_once_per_pass() -> None:
    batches = batch_schedule(10, 4, 5, seed=1, which="forget")
    assert [len(b) for b in batches] == [4] * 5
    flat = torch.cat(batches)
    assert sorted(flat[:10].tolist()) == list(range(10))  # the first pass is a permutation
    assert all(torch.equal(a, b) for a, b in zip(batches, batch_schedule(10, 4, 5, seed=1, which="forget"), strict=True))
    assert not torch.equal(torch.cat(batch_schedule(10, 4, 5, seed=2, which="forget")), flat)
    assert [len(b) for b in batch_schedule(3, 8, 2, 0, 1)] == [3, 3]  # never larger than the set


def test_every_method_of_a_seed_sees_the_same_batches_in_eval_mode() -> None:
    seen = []
    for _ in range(2):
        model, forget, retain = problem()
        model.train()
        spy = Spy()
        unlearn(model, spy, data_for(model, forget, retain, budget=5), batch_size=8, seed=4)
        seen.append(spy.seen)
        assert spy.training == [False] * 5
    assert seen[0] == seen[1]


def test_divergence_stops_and_restores_the_last_finite_weights() -> None:
    model, forget, retain = problem()
    reference = copy_model(model)
    result = unlearn(model, Spy(blow_up=2), data_for(model, forget, retain, budget=6), batch_size=8)
    # the objective at step 2 (evaluated on the weights after two steps) is infinite: keep the weights after one step
    after_one = copy_model(reference)
    unlearn(after_one, Spy(), data_for(after_one, forget, retain, budget=1), batch_size=8)
    assert result.diverged_at == 2 and result.steps_run == 2
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), after_one.parameters(), strict=True))


@pytest.mark.slow
def test_gradient_ascent_keeps_falling_while_npo_stays_bounded() -> None:
    values = {}
    for name in ("ga", "npo"):
        model, forget, retain = problem()

        def evaluate(m: nn.Module, forget: Rows = forget) -> dict[str, float]:
            with torch.no_grad():
                return {"forget_ce": nn.functional.cross_entropy(m(forget.x), forget.y).item()}

        result = unlearn(model, make_objective(name, lr=1e-2), data_for(model, forget, retain, budget=60),
                         batch_size=18, evaluate=evaluate, curve_every=20)
        curve = result.curve
        values[name] = [c["objective"] for c in curve[1:]]
        assert [c["step"] for c in curve] == [0, 20, 40, 60]
        assert math.isnan(curve[0]["objective"])
        assert curve[-1]["forget_ce"] > curve[0]["forget_ce"]  # both forget
    assert all(v >= 0 for v in values["npo"])
    assert values["ga"][-1] < values["ga"][0] < 0
