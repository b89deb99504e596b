"""Every registered loss passes every conformance check, and the checks catch broken losses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from lossbench.conformance import CHECKS, run_check, run_checks
from lossbench.errors import SpecError
from lossbench.losses import LOSSES
from lossbench.losses.base import LossBase, LossInfo
from lossbench.losses.registry import register_loss


@pytest.mark.parametrize("name", LOSSES.names())
def test_registered_loss_passes_all_checks(name: str) -> None:
    results = run_checks(name)
    assert [r.check for r in results] == list(CHECKS)
    failures = [f"{r.check}: {r.detail}" for r in results if not r.passed]
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
