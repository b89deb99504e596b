"""Every registered loss passes every conformance check, and the checks catch broken losses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from lossbench.conformance import CHECKS, run_check, run_checks, run_grid
from lossbench.errors import SpecError
from lossbench.losses import LOSSES
from lossbench.losses.base import LossBase, LossInfo, Param
from lossbench.losses.registry import register_loss

#: losses whose checks take many seconds (persistent homology per pixel): run with the slow tests
SLOW_TO_CHECK = {"betti-matching"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_CHECK else n for n in LOSSES.names()]
)
def test_registered_loss_passes_all_checks(name: str) -> None:
    results = run_checks(name)
    assert [r.check for r in results] == list(CHECKS)
    failures = [f"{r.check}: {r.detail}" for r in results if not r.passed]
    assert not failures, failures


@pytest.mark.slow
@pytest.mark.parametrize("name", LOSSES.names())
def test_registered_loss_passes_its_parameter_grid(name: str) -> None:
    """What `check-loss --all` adds to the defaults: every configuration of the seeded parameter grid."""
    results = run_grid(name)
    failures = [f"{r.spec} / {r.check}: {r.detail}" for r in results if not r.passed]
    assert not failures, failures


def _info(name: str, batch_dependent: bool = False) -> LossInfo:
    return LossInfo(
        name=name,
        family="test",
        tasks=frozenset({"multiclass"}),
        input="logits",
        params={},
        citation="test",
        batch_dependent=batch_dependent,
    )


class _Undeclared(LossBase):
    """Secretly batch-dependent: subtracts the batch mean of the logits' true-class column."""

    info = _info("test-undeclared-batch")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        z_y = input.gather(1, target[:, None]).squeeze(1)
        return (z_y - z_y.mean()) ** 2


class _Overflows(LossBase):
    """exp of the logits: overflows at extreme inputs."""

    info = _info("test-overflows")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return input.exp().sum(1)


class _WrongGradient(LossBase):
    """Detaches half of its computation without declaring a surrogate gradient."""

    info = _info("test-wrong-gradient")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return input.square().sum(1) * input.detach().sum(1)


@pytest.fixture
def broken_losses() -> Iterator[None]:
    classes = [_Undeclared, _Overflows, _WrongGradient]
    for cls in classes:
        register_loss(cls)
    yield
    for cls in classes:
        LOSSES.unregister(cls.info.name)  # keep the registry clean for other tests


def test_checks_catch_broken_losses(broken_losses: None) -> None:
    assert not run_check("test-undeclared-batch", "batch-dependence").passed
    assert not run_check("test-overflows", "extreme-logits").passed
    assert not run_check("test-wrong-gradient", "gradcheck").passed
    assert run_check("test-wrong-gradient", "extreme-logits").passed


def test_unknown_loss_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="Did you mean"):
        run_checks("focall")


def _app() -> Any:
    import typer

    from lossbench.cli.check_loss import check_loss

    app = typer.Typer()
    app.command()(check_loss)
    return app


def test_cli_table_and_json() -> None:
    runner = CliRunner()
    result = runner.invoke(_app(), ["focal"])
    assert result.exit_code == 0, result.output
    assert "focal" in result.output
    result = runner.invoke(_app(), ["ce", "--format", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert {r["check"] for r in rows} == set(CHECKS) and all(r["passed"] for r in rows)


def test_cli_exits_one_on_failure(broken_losses: None) -> None:
    result = CliRunner().invoke(_app(), ["test-overflows"])
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_cli_needs_a_name_or_all() -> None:
    result = CliRunner().invoke(_app(), [])
    assert isinstance(result.exception, SpecError)


# -- the parameter grid (check-loss --all) ----------------------------------------------------------------


def test_parameter_grid_reaches_ends_choices_and_near_default_values() -> None:
    from lossbench.conformance import parameter_grid

    focal = [p["gamma"] for p in parameter_grid("focal")]
    assert {0.0, 0.5, 8.0, 22.0} <= set(focal)  # closed low end, default/4, 4·default, cut-off unbounded end
    assert 2.0 not in focal  # the default is checked already
    gce = [p["q"] for p in parameter_grid("gce")]
    assert 0.0 not in gce and min(gce) == pytest.approx(1e-3) and 1.0 in gce  # just inside an open end
    arcface = parameter_grid("arcface")
    assert {"form": "plain"} in arcface and len(arcface[-1]) == 3  # every choice; one joint configuration
    assert parameter_grid("ldam") == parameter_grid("ldam")  # seeded: the same grid on every run
    for name in LOSSES.names():
        info = LOSSES.get(name).info
        for params in parameter_grid(name):
            for key, value in params.items():
                assert info.params[key].validate(name, key, value) == value


class _SqrtFocal(LossBase):
    """The focal loss before the NaN guard: -(1 - p_y)^gamma log p_y with a plain power."""

    info = LossInfo(name="test-sqrt-focal", family="test", tasks=frozenset({"multiclass"}), input="logits",
                    params={"gamma": Param(2.0, "focusing", low=0.0)}, citation="test")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        logp = input.gather(1, target[:, None])[:, 0] - torch.logsumexp(input, 1)
        return -((-torch.expm1(logp)).clamp_min(0) ** self.gamma) * logp


def test_grid_finds_what_the_defaults_hide() -> None:
    from lossbench.conformance import run_grid

    register_loss(_SqrtFocal)
    try:
        assert all(r.passed for r in run_checks("test-sqrt-focal"))  # gamma = 2: finite everywhere
        failed = [r for r in run_grid("test-sqrt-focal") if not r.passed]
        direct = run_check("test-sqrt-focal", "extreme-logits", {"gamma": 0.5})
    finally:
        LOSSES.unregister("test-sqrt-focal")
    assert {r.check for r in failed} == {"extreme-logits"}
    assert all(0 < r.params["gamma"] < 1 for r in failed)
    assert not direct.passed and "±50 float32: non-finite gradient" in direct.detail
    assert direct.spec == "test-sqrt-focal:gamma=0.5" and direct.to_dict()["params"] == {"gamma": 0.5}


def test_batch_dependence_is_seen_through_saturation() -> None:
    # at L = 292 sample 0's gradient is about 1e-33 and moves by a third with its batch-mates
    result = run_check("anyloss-f1", "batch-dependence", {"L": 292.0})
    assert result.passed and not result.skipped, result.detail


def test_a_clearly_refused_grid_configuration_skips() -> None:
    # soft-topk refuses k >= the number of labels with a LossInputError: a skip in the grid, a failure at defaults
    grid = run_check("soft-topk", "gradcheck", {"k": 20}, fast_gradcheck=True)
    assert grid.passed and grid.skipped and "k < the number of labels" in grid.detail
    assert not run_check("soft-topk", "gradcheck", {"k": 20}).passed


def test_cli_checks_a_loss_spec_and_refuses_a_method() -> None:
    runner = CliRunner()
    result = runner.invoke(_app(), ["focal:gamma=0.5", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["spec"] for r in rows} == {"focal:gamma=0.5"} and all(r["passed"] for r in rows)
    method = runner.invoke(_app(), ["rankmixup-mrl"])
    assert isinstance(method.exception, SpecError) and "training method" in str(method.exception)
    bad = runner.invoke(_app(), ["focal:gamma=-1"])
    assert isinstance(bad.exception, SpecError) and "gamma" in str(bad.exception)
