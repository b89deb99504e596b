"""Seed-stacked training reproduces per-seed training: same splits, weights, batches, dropout and early stopping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lossbench.runner import plan, run, stacks
from lossbench.store import ResultStore
from lossbench.suite import Suite, parse_suite

SUITE = {
    "name": "vec",
    "version": "1",
    "task": "classification",
    "datasets": ["synthetic:classification#n=400&minority=0.25", "synthetic:classification#n=300&classes=3&minority=0.3"],
    "losses": ["ce", "focal", "anyloss-f1"],
    "seeds": 3,
    "primary_metric": "f1_tuned",
    "metrics": ["f1", "auroc", "auprc", "brier"],
    # dropout and a short patience: the masks and per-seed early stopping must match too
    "model": {"family": "mlp", "hidden": [16, 8], "dropout": 0.1},
    "training": {"epochs": 12, "batch_size": 64, "patience": 3, "lr": 0.01, "dtype": "float64"},
}
OUTCOME = ["status", "value", "epochs_run", "best_epoch", "m_f1", "m_auroc", "m_auprc", "m_brier", "m_f1_tuned"]


def rows(tmp_path: Path, suite: Suite, name: str, vectorize: bool) -> pd.DataFrame:
    store = ResultStore(tmp_path / name)
    run(store, plan(store, suite), vectorize=vectorize)
    return store.read_trials().sort_values("trial_id").reset_index(drop=True)


@pytest.mark.slow
def test_vectorised_and_per_seed_training_agree(tmp_path: Path) -> None:
    suite = parse_suite(dict(SUITE), "vec.toml")
    per_seed = rows(tmp_path, suite, "per-seed", False)
    stacked = rows(tmp_path, suite, "stacked", True)
    assert list(per_seed.columns) == list(stacked.columns)  # same schema
    assert list(per_seed["trial_id"]) == list(stacked["trial_id"])
    assert set(per_seed["status"]) == {"ok"}
    applicable = [c for c in OUTCOME if c in per_seed.columns and per_seed[c].notna().any()]
    pd.testing.assert_frame_equal(per_seed[applicable], stacked[applicable], check_exact=False, atol=1e-5, rtol=0)
    # early stopping happened for some seeds and not others, so masking was exercised
    assert per_seed["epochs_run"].min() < 12


def test_stacks_group_the_losses_and_seeds_of_one_dataset() -> None:
    suite = parse_suite(dict(SUITE), "vec.toml")
    trials = plan(None, suite).pending
    units = stacks(trials, vectorize=True)
    assert len(units) == 2 and all(len(u) == 3 * 3 for u in units)
    assert all(len({s.dataset for s in u}) == 1 for u in units)
    assert [s for u in units for s in u] == trials  # grid order kept
    assert stacks(trials, vectorize=False) == [[t] for t in trials]


def test_stacks_are_halved_by_seed_until_every_worker_has_one() -> None:
    suite = parse_suite({**SUITE, "datasets": SUITE["datasets"][:1]}, "vec.toml")
    trials = plan(None, suite).pending
    units = stacks(trials, vectorize=True, workers=2)
    assert [sorted({s.seed for s in u}) for u in units] == [[0], [1, 2]]
    assert all(len({s.loss for s in u}) == 3 for u in units)  # a unit keeps every loss of its seeds


def test_parallel_per_seed_units_hold_the_losses_of_one_split() -> None:
    from lossbench.runner import by_split

    trials = plan(None, parse_suite(dict(SUITE), "vec.toml")).pending
    units = by_split(trials)
    assert len(units) == 2 * 3 and all(len(u) == 3 for u in units)  # 2 datasets x 3 seeds; 3 losses each
    assert all(len({(s.dataset, s.seed) for s in u}) == 1 and len({s.loss for s in u}) == 3 for u in units)
    assert [s for u in units for s in u] == trials  # grid order kept


def test_parallel_units_start_with_the_largest_dataset_and_keep_grid_order_within_one() -> None:
    from lossbench.runner import largest_first

    suite = parse_suite(dict(SUITE), "vec.toml")
    the_plan = plan(None, suite)
    first, second = dict.fromkeys(t.dataset for t in the_plan.pending)  # grid order
    assert the_plan.data_sizes == {first: 400, second: 300}
    for vectorize in (False, True):
        units = stacks(the_plan.pending, vectorize=vectorize)
        ordered = largest_first(units, {first: 300, second: 400})
        big = [u for u in units if u[0].dataset == second]
        assert ordered == big + [u for u in units if u[0].dataset == first]  # each dataset's units in grid order


def test_a_loss_with_per_sample_state_runs_per_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lossbench.vectorized as vectorized

    stacked_groups: list[int] = []
    original = vectorized.train_stacked
    monkeypatch.setattr(vectorized, "train_stacked",
                        lambda *a, **k: stacked_groups.append(len(a[1])) or original(*a, **k))
    suite = parse_suite({**SUITE, "datasets": SUITE["datasets"][:1], "losses": ["aldr-kl", "ce"], "seeds": 2},
                        "vec.toml")
    per_seed = rows(tmp_path, suite, "per-seed", False)
    mixed = rows(tmp_path, suite, "mixed", True)
    assert stacked_groups == [2]  # ce stacked; aldr-kl (info.vectorizable = False) fell back to per-seed
    assert set(mixed["status"]) == {"ok"}
    pd.testing.assert_frame_equal(per_seed[["value", "epochs_run"]], mixed[["value", "epochs_run"]],
                                  check_exact=False, atol=1e-5, rtol=0)


NAN_ON_SEED_1 = '''
import torch.nn.functional as F
from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

class NanOnSeed1(LossBase):
    """Cross-entropy, except that seed 1's objective becomes NaN from epoch 2 on."""
    info = LossInfo(name="test-nan-on-seed-1", family="test", tasks=frozenset({"binary", "multiclass"}),
                    input="logits", params={}, citation="test only", needs=frozenset({"seed", "epoch"}))

    def per_sample(self, input, target, epoch=0, **extras):
        out = F.cross_entropy(input, target, reduction="none")
        return out * float("nan") if self.context["seed"] == 1 and epoch >= 2 else out

if NanOnSeed1.info.name not in LOSSES:
    register_loss(NanOnSeed1)
'''


def test_a_diverging_seed_is_recorded_and_the_other_seeds_train_on(tmp_path: Path) -> None:
    from lossbench.plugins import load_plugins

    plugin = tmp_path / "nan_loss.py"
    plugin.write_text(NAN_ON_SEED_1)
    load_plugins([str(plugin)])
    suite = parse_suite({**SUITE, "datasets": SUITE["datasets"][:1], "losses": ["test-nan-on-seed-1"], "seeds": 3},
                        "vec.toml")
    per_seed = rows(tmp_path, suite, "per-seed", False)
    stacked = rows(tmp_path, suite, "stacked", True)
    assert list(stacked.sort_values("seed")["status"]) == ["ok", "diverged", "ok"]
    assert stacked.set_index("seed").loc[1, "error_msg"].startswith("training objective became nan at epoch 2")
    ok = per_seed["status"] == "ok"
    pd.testing.assert_frame_equal(per_seed.loc[ok, ["value", "epochs_run"]], stacked.loc[ok, ["value", "epochs_run"]],
                                  check_exact=False, atol=1e-5, rtol=0)


def test_one_loss_call_serves_every_seed_only_for_a_stateless_per_sample_loss() -> None:
    import torch

    from lossbench.losses import make_loss
    from lossbench.vectorized import shared_loss, shared_objective

    def built(name: str, counts: list[list[int]]) -> list:  # type: ignore[type-arg]
        return [make_loss(name, None, class_counts=c, n_classes=2, n_samples=sum(c), seed=s) for s, c in enumerate(counts)]

    same, other = [[60, 40], [60, 40]], [[60, 40], [55, 45]]
    assert shared_loss(built("ce", other)) is not None and shared_loss(built("focal", other)) is not None
    for name in ("weighted-ce", "ldam", "anyloss-f1"):  # class counts of each seed's split; a batch statistic
        assert shared_loss(built(name, same)) is None, name
    assert shared_loss([make_loss("focal", {"gamma": 1.0}), make_loss("focal", {"gamma": 2.0})]) is None
    logits, y = torch.randn(3, 8, 2, dtype=torch.float64), torch.randint(0, 2, (3, 8))
    focal = built("focal", same)[0]
    expected = torch.stack([focal(logits[s], y[s]) for s in range(3)])
    torch.testing.assert_close(shared_objective(focal, logits, y), expected)


def test_a_retrieval_cell_under_vectorize_seeds_evaluates_each_seed_as_its_task_does(tmp_path: Path) -> None:
    suite = parse_suite({
        "name": "vec-retrieval", "version": "1", "task": "retrieval", "datasets": ["sklearn:digits"],
        "losses": ["contrastive"], "seeds": 2, "primary_metric": "recall_at_1", "metrics": ["map_at_r"],
        "model": {"family": "mlp", "hidden": [32], "dropout": 0.0},
        "training": {"epochs": 2, "batch_size": 64, "patience": 0},
    }, "vec.toml")
    per_seed = rows(tmp_path, suite, "per-seed", False)
    stacked = rows(tmp_path, suite, "stacked", True)
    assert set(stacked["status"]) == {"ok"}, list(stacked["error_msg"])
    pd.testing.assert_frame_equal(per_seed[["m_recall_at_1"]], stacked[["m_recall_at_1"]],
                                  check_exact=False, atol=1e-4, rtol=0)


def classification_losses() -> list[str]:
    from lossbench.losses import LOSSES

    return [n for n in LOSSES.names() if LOSSES.get(n).info.tasks & {"binary", "multiclass"}
            and LOSSES.get(n).info.input in ("logits", "probabilities")]


def test_which_objectives_train_alone_and_why() -> None:
    from lossbench.conformance import context
    from lossbench.methods import METHODS
    from lossbench.objectives import build_loss, build_method, parse_objective
    from lossbench.vectorized import member_reason

    plain = build_method(parse_objective("ce"))
    alone = {name: member_reason(build_loss(parse_objective(name), **context(2)), plain)
             for name in classification_losses()}
    # aldr-kl keeps a weight per training row (indexed by row): its state is per model, and its slice of a stack
    # would need its own rows' indices. Every other loss is called on its member's slice (batch-dependent ones
    # such as anyloss-* and ensloss, whose generator advances once per call, as in its own loop) or shared.
    assert {n: r for n, r in alone.items() if r is not None} == {"aldr-kl": "loss aldr-kl opts out"}
    # a method with its own step or update (mixup, distillation, ...) needs its own model and loop
    for name in METHODS.names():
        if name != "plain":
            assert member_reason(build_loss(parse_objective("ce")), METHODS.get(name)()) is not None, name


@pytest.mark.slow
def test_every_stackable_loss_trains_loss_by_seed_stacked_as_it_does_alone(tmp_path: Path) -> None:
    """One stack of every stackable classification loss × 2 seeds per dataset: the same trial ids and values,
    to the last bit, as one trial at a time (float64; skipped trials are skipped either way)."""
    suite = parse_suite({**SUITE, "datasets": ["synthetic:classification#n=200&minority=0.3",
                                               "synthetic:classification#n=150&classes=3&minority=0.3"],
                         "losses": [n for n in classification_losses() if n != "aldr-kl"], "seeds": 2,
                         "training": {**SUITE["training"], "epochs": 3, "patience": 2}}, "vec.toml")
    per_seed = rows(tmp_path, suite, "per-seed", False)
    stacked = rows(tmp_path, suite, "stacked", True)
    assert list(per_seed["trial_id"]) == list(stacked["trial_id"])
    assert list(per_seed["status"]) == list(stacked["status"]), list(stacked["error_msg"])
    ok = stacked["status"] == "ok"
    assert ok.sum() >= 2 * 2 * 20  # z-loss is multiclass only, ensloss and a few others binary only
    assert set(per_seed["training_mode"]) == {"per-seed"}
    assert set(stacked.loc[ok, "training_mode"]) == {"loss-seed-stacked"}
    outcome = [c for c in OUTCOME if c in per_seed.columns]
    pd.testing.assert_frame_equal(per_seed[outcome], stacked[outcome], check_exact=True)


def test_run_stacks_by_default_and_no_vectorize_trains_each_trial_alone(tmp_path: Path, tiny_suite_file: Path) -> None:
    from typer.testing import CliRunner

    from lossbench.cli.app import app

    modes = {}
    for name, flags in {"default": [], "off": ["--no-vectorize"], "old-flag": ["--vectorize-seeds"]}.items():
        result = CliRunner().invoke(app, ["run", "--suite", str(tiny_suite_file), "--out", str(tmp_path / name), "-q",
                                          *flags])
        assert result.exit_code == 0, result.output
        trials = pd.read_parquet(tmp_path / name / "trials").sort_values("trial_id")
        modes[name] = set(trials["training_mode"])
        if name == "default":
            default = trials
    assert modes == {"default": {"loss-seed-stacked"}, "off": {"per-seed"}, "old-flag": {"loss-seed-stacked"}}
    assert list(trials["trial_id"]) == list(default["trial_id"])  # the mode is not in the key
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "--no-vectorize" in help_text and "--vectorize-seeds" not in help_text


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_stacked_layers_give_each_members_outputs_and_gradients(activation: str) -> None:
    """Both weight layouts (widening layers in-major, narrowing ones out-major) give every member what its own
    MLP gives, forward and backward, and each member's view validates with the model's activation."""
    import torch

    from lossbench.models.mlp import MLP
    from lossbench.vectorized import SeedView, StackedMLP

    torch.manual_seed(0)
    models = [MLP(5, 3, hidden=[16, 4], activation=activation).double() for _ in range(3)]
    stacked = StackedMLP(models)
    assert stacked.out_major == [False, True, True]  # 5 → 16 widens; 16 → 4 and 4 → 3 narrow
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    target = torch.randn(3, 7, 3, dtype=torch.float64)
    ((stacked(x) - target) ** 2).sum().backward()
    for s, model in enumerate(models):
        out = model(x[s])
        torch.testing.assert_close(stacked(x)[s], out, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(SeedView(stacked, s)(x[s]), out, rtol=1e-12, atol=1e-12)
        ((out - target[s]) ** 2).sum().backward()
        linears = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
        for i, layer in enumerate(linears):
            grad = stacked.weights[i].grad[s]
            torch.testing.assert_close(grad if stacked.out_major[i] else grad.t(), layer.weight.grad,
                                       rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(stacked.biases[i].grad[s], layer.bias.grad, rtol=1e-12, atol=1e-12)
        exported = MLP(5, 3, hidden=[16, 4], activation=activation).double()
        stacked.export(s, stacked.seed_state(s), exported)
        torch.testing.assert_close(exported(x[s]), out, rtol=0, atol=0)
