"""A trial's problem becomes its status; the run goes on."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss
from lossbench.runner import expand
from lossbench.suite import Suite
from lossbench.trial import execute

BOTH = frozenset({"binary", "multiclass"})


def _info(name: str, tasks: frozenset[str] = BOTH) -> LossInfo:
    return LossInfo(name=name, family="test", tasks=tasks, input="logits", params={}, citation="test only")


class NaNLoss(LossBase):
    info = _info("test-nan")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return input.sum(dim=1) * float("nan")


class RaisingLoss(LossBase):
    info = _info("test-raise")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        raise RuntimeError("this loss always fails")


class OOMLoss(LossBase):
    info = _info("test-oom")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        raise torch.OutOfMemoryError("simulated out of memory")


class SlowLoss(LossBase):
    info = _info("test-slow")

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        import time

        time.sleep(0.05)
        return torch.nn.functional.cross_entropy(input, target, reduction="none")


class MulticlassOnly(LossBase):
    info = _info("test-multiclass-only", frozenset({"multiclass"}))

    def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(input, target, reduction="none")


@pytest.fixture(scope="module", autouse=True)
def test_losses():  # type: ignore[no-untyped-def]
    classes = (NaNLoss, RaisingLoss, OOMLoss, SlowLoss, MulticlassOnly)
    for cls in classes:
        if cls.info.name not in LOSSES:
            register_loss(cls)
    yield
    for cls in classes:  # leave the registry as other tests (check-loss --all, the catalogue) expect it
        LOSSES.unregister(cls.info.name)


def run_one(suite: Suite, loss: str, **kwargs: Any) -> dict[str, Any]:
    trials, _ = expand(suite, losses=[loss], seeds=[0], **kwargs)
    return execute(trials[0]).row


def test_ok_row_has_metrics_cost_and_provenance(tiny_suite: Suite) -> None:
    row = run_one(tiny_suite, "ce")
    assert row["status"] == "ok" and row["error_msg"] == ""
    assert 0 <= row["value"] <= 1 and row["value"] == row["m_balanced_accuracy"]
    assert {"m_accuracy", "m_auroc"} <= set(row)
    assert row["epochs_run"] == 3 and row["wall_s"] > 0 and row["peak_rss_mb"] > 0
    assert row["torch_version"] == torch.__version__ and row["device"] == "cpu"
    assert row["n_train"] + row["n_val"] + row["n_test"] == 300


def test_nan_loss_is_diverged(tiny_suite: Suite) -> None:
    row = run_one(tiny_suite, "test-nan")
    assert row["status"] == "diverged"
    assert "nan" in row["error_msg"]


def test_raising_loss_is_failed_with_its_message(tiny_suite: Suite) -> None:
    row = run_one(tiny_suite, "test-raise")
    assert row["status"] == "failed"
    assert row["error_type"] == "RuntimeError"
    assert "this loss always fails" in row["error_msg"]


def test_out_of_memory_is_oom(tiny_suite: Suite) -> None:
    assert run_one(tiny_suite, "test-oom")["status"] == "oom"


def test_time_limit_gives_timeout(tiny_suite: Suite) -> None:
    row = run_one(tiny_suite, "test-slow", trial_timeout=0.2)
    assert row["status"] == "timeout"
    assert row["wall_s"] < 5


def test_unsupported_pair_is_skipped_with_reason(tiny_suite: Suite) -> None:
    row = run_one(tiny_suite, "test-multiclass-only")  # the tiny dataset is binary
    assert row["status"] == "skipped"
    assert "not binary data" in row["error_msg"]


@pytest.mark.slow
def test_warm_up_is_paid_before_the_first_trials_clock_and_deadline(tiny_suite: Suite,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The first trial of a process used to carry its imports (seconds: the first optimiser imports torch's
    compiler stack) in wall_s and inside --trial-timeout."""
    import time

    from lossbench import trial

    def slow_first_step(device: str) -> None:
        time.sleep(3.0)

    monkeypatch.setattr(trial, "_warm", False)  # a fresh worker process
    monkeypatch.setattr(trial, "warm_up_step", slow_first_step)
    trials, _ = expand(tiny_suite, losses=["ce"], seeds=[0, 1])
    first = execute(dataclasses.replace(trials[0], trial_timeout=2.5)).row
    assert first["status"] == "ok", first["error_msg"]  # the deadline started after the warm-up
    assert first["warmup_s"] >= 3.0 and first["wall_s"] < first["warmup_s"]
    second = execute(trials[1]).row
    assert second["status"] == "ok" and second["warmup_s"] == 0.0


@pytest.mark.slow
def test_warm_up_imports_what_the_first_optimiser_would(tmp_path: Path) -> None:
    """A time-out must not interrupt torch's import: it happens in the warm-up, before any deadline."""
    script = tmp_path / "fresh.py"
    script.write_text(textwrap.dedent("""
        import sys
        from lossbench import trial
        from lossbench.objectives import parse_objective
        from lossbench.specs import TrialSpec
        assert "torch._dynamo" not in sys.modules
        spec = TrialSpec("s", "1", "classification", "sklearn:wine", "", parse_objective("ce"), 0)
        assert trial.warm_up(spec) > 0 and "torch._dynamo" in sys.modules and trial.warm_up(spec) == 0
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert result.returncode == 0, result.stderr
