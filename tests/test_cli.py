from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.store import ResultStore

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_quickstart_runs_writes_rows_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    result = invoke("run", "--seeds", "2", "--n-jobs", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    trials = ResultStore(out).read_trials()
    assert len(trials) == 3 * 4 * 2  # datasets × losses × seeds
    assert set(trials["status"]) == {"ok"}
    assert set(trials["loss"]) == {"ce", "weighted-ce", "focal", "anyloss-f1"}
    for col in ("trial_id", "suite_version", "data_hash", "config_hash", "value", "m_auroc", "m_f1", "wall_s",
                "peak_rss_mb", "torch_version", "git_sha"):
        assert col in trials, col
    assert trials["trial_id"].is_unique
    assert "balanced_accuracy" in result.output and "average rank" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"][0]["suite"]["name"] == "quickstart"
    assert not ResultStore(out).read_metrics().empty

    again = invoke("run", "--seeds", "2", "--out", str(out))
    assert again.exit_code == 0
    assert "0 to run, 24 already done" in again.output
    assert len(ResultStore(out).read_trials()) == 24

    status = invoke("status", str(out))
    assert status.exit_code == 0 and "ok 24" in status.output and "pending 0" in status.output
    report = invoke("report", str(out), "--metric", "auroc")
    assert report.exit_code == 0 and "auroc" in report.output

    frame = pd.read_parquet(out / "trials")  # plain pandas reads the directory too
    assert len(frame) == 24


def test_new_loss_adds_only_its_trials_and_status_explains(tmp_path: Path, tiny_suite_file: Path) -> None:
    out = tmp_path / "r"
    assert invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "-q").exit_code == 0
    dry = invoke("run", "--suite", str(tiny_suite_file), "--out", str(out), "--loss", "focal:gamma=1", "--dry-run")
    assert dry.exit_code == 0 and "4 to run" in dry.output
    status = invoke("status", str(out), "--suite", str(tiny_suite_file))
    assert "pending 0" in status.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--loss", "focl"], "Did you mean 'focal'"),
        (["run", "--suite", "nope"], "Unknown suite 'nope'"),
        (["run", "--seeds", "0"], "--seeds must be at least 1"),
        (["run", "--dataset", "csv:missing.csv#target=y"], "Cannot find the file"),
        (["run", "--dataset", "nosuch:thing"], "No data source for scheme 'nosuch'"),
        (["run", "--loss", "focal:gamma=-2"], "must be a float in [0, inf]"),
        (["run", "--n-jobs", "0"], "--n-jobs must be at least 1"),
        (["report", "does-not-exist"], "does not exist"),
        (["list", "losses", "--format", "yaml"], "Unknown --format"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], fragment: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_unwritable_out_and_malformed_suite(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["run", "--out", str(blocker / "sub")])
    assert result.exit_code == 2 and "Choose a writable --out directory" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\nversion = 1\n")
    result = runner.invoke(app, ["run", "--suite", str(bad)])
    assert result.exit_code == 2 and "bad.toml: task: missing" in result.output


def test_incompatible_results_dir_is_not_touched(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 0, "runs": []}))
    result = runner.invoke(app, ["run", "--out", str(tmp_path)])
    assert result.exit_code == 3 and "schema version 0" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("what", ["losses", "methods", "suites", "datasets", "metrics", "tasks"])
def test_list_json(what: str) -> None:
    result = invoke("list", what, "--format", "json")
    assert result.exit_code == 0
    records = json.loads(result.output)
    assert records and all("name" in r for r in records)


def test_help_explains_every_verb() -> None:
    top = invoke("--help")
    for verb in ("run", "list", "status", "report", "compare", "gate", "calibrate", "check-loss"):
        assert verb in top.output
        sub = invoke(verb, "--help")
        assert sub.exit_code == 0 and "Example" in sub.output


def test_check_loss_all_passes_and_a_broken_loss_fails() -> None:
    result = invoke("check-loss", "--all", "--format", "json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)
    assert {c["loss"] for c in checks} >= {"ce", "focal", "anyloss-f1", "z-loss", "aldr-kl"}
    assert all(c["passed"] is not False for c in checks)
    unknown = runner.invoke(app, ["check-loss", "focl"])
    assert unknown.exit_code == 2 and "Did you mean 'focal'" in unknown.output

    import torch

    from lossbench.losses import LOSSES, LossBase, LossInfo, register_loss

    class OverflowingLoss(LossBase):
        info = LossInfo(name="test-overflow", family="test", tasks=frozenset({"binary", "multiclass"}),
                        input="logits", params={}, citation="test only")

        def per_sample(self, input: torch.Tensor, target: torch.Tensor, **extras: object) -> torch.Tensor:
            return torch.exp(input).sum(dim=1)  # overflows to inf at large logits

    if "test-overflow" not in LOSSES:
        register_loss(OverflowingLoss)
    try:
        broken = runner.invoke(app, ["check-loss", "test-overflow"])
    finally:
        LOSSES.unregister("test-overflow")
    assert broken.exit_code == 1, broken.output
    assert "fail" in broken.output.lower()
