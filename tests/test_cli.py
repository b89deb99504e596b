from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli.app import app
from lossbench.store import ResultStore

runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.slow
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
        (["run", "--seeds", "0"], "Invalid value for '--seeds': Input should be greater than or equal to 1."),
        (["run", "--dataset", "csv:missing.csv#target=y"], "Cannot find the file"),
        (["run", "--dataset", "nosuch:thing"], "No data source for scheme 'nosuch'"),
        (["run", "--loss", "focal:gamma=-2"], "must be a float in [0, inf]"),
        (["run", "--n-jobs", "0"], "0 workers cannot run a trial; use 1 or more, or -1 for every core."),
        (["report", "does-not-exist"], "does not exist"),
        (["list", "losses", "--format", "yaml"], "'yaml' is not one of 'table', 'json', 'markdown', 'csv'"),
        (["runn"], "No such command 'runn'. Did you mean 'run'?"),
        (["run", "--dry-run", "true"], "--dry-run is a flag and takes no value"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], fragment: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Click's usage errors and the library's errors end the same way: one line, the fix, exit 2, nothing written."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no results/quickstart folder left behind


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


@pytest.mark.slow
def test_check_loss_all_checks_every_loss_at_its_defaults_and_its_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    # Five losses stand for the registry here: every loss's defaults and grid are checked one by one in
    # tests/losses/test_conformance.py, which this command runs in one call.
    from lossbench.conformance import CHECKS, parameter_grid
    from lossbench.losses import LOSSES

    chosen = ["aldr-kl", "anyloss-f1", "ce", "focal", "z-loss"]
    monkeypatch.setattr(LOSSES, "names", lambda: chosen)
    result = invoke("check-loss", "--all", "--format", "json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)
    expected = {(name, json.dumps(params, sort_keys=True)) for name in chosen
                for params in [{}, *parameter_grid(name)]}
    assert {(c["loss"], json.dumps(c["params"], sort_keys=True)) for c in checks} == expected
    assert len(checks) == len(expected) * len(CHECKS)
    assert all(c["passed"] is not False for c in checks)


def test_check_loss_names_a_typo_and_fails_a_broken_loss() -> None:
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


VERBS = ("run", "list", "status", "report", "compare", "gate", "calibrate", "check-loss")


@pytest.mark.parametrize("verb", VERBS)
def test_help_shows_flags_as_flags(verb: str) -> None:
    """A boolean flag is shown bare (`--dry-run`), never as an option taking a `<bool>` value."""
    result = runner.invoke(app, [verb, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "--help" in result.output


@pytest.mark.parametrize("verb", ["list losses", "check-loss focal", "compare x", "gate -b x -c y"])
def test_one_format_vocabulary(verb: str) -> None:
    """Every verb with --format takes the same words: table, json, markdown, csv."""
    result = runner.invoke(app, [*verb.split(), "--format", "yaml"])
    assert result.exit_code == 2, result.output
    assert "'yaml' is not one of 'table', 'json', 'markdown', 'csv'" in result.output


def test_top_level_help_and_usage_errors_import_nothing_heavy() -> None:
    """`lossbench --help`, `--version` and a usage error start in well under a second: no torch, pandas,
    scipy or registry import (benchmarks/startup.py measures the time)."""
    probe = (
        "import sys\n"
        "from lossbench.cli.app import app\n"
        "for argv in (['--help'], ['--version'], ['run', '--seeds', '0'], ['list', '--help'], ['run', '--help']):\n"
        "    try:\n"
        "        app(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = sorted(m for m in ('torch', 'pandas', 'scipy', 'sklearn', 'pyarrow', 'lossbench.losses',\n"
        "                          'lossbench.runner', 'lossbench.store') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_n_jobs_minus_one_means_every_core_and_scheduler_says_what_it_does(tmp_path: Path,
                                                                          tiny_suite_file: Path) -> None:
    from joblib import cpu_count

    out = tmp_path / "r"
    result = invoke("run", "--suite", str(tiny_suite_file), "--seeds", "1", "-l", "ce", "--n-jobs", "-1",
                    "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"][0]["options"]["n_jobs"] == cpu_count()
    refused = runner.invoke(app, ["run", "--suite", str(tiny_suite_file), "--scheduler", "tcp://127.0.0.1:1",
                                  "--n-jobs", "4", "--out", str(tmp_path / "s"), "--dry-run"])
    assert refused.exit_code == 2 and "--scheduler only applies to --backend dask" in refused.output
    noted = invoke("run", "--suite", str(tiny_suite_file), "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1",
                   "--n-jobs", "4", "--out", str(tmp_path / "s"), "--dry-run")
    assert noted.exit_code == 0, noted.output
    assert "--n-jobs 4 is not used with --scheduler: the cluster's workers run the trials" in noted.output


def test_list_losses_is_one_line_each_and_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from lossbench.cli import listing

    everything = invoke("list", "losses", "--format", "json")
    n = len(json.loads(everything.output))
    monkeypatch.setattr(listing, "console", Console(width=80))  # an 80-column terminal
    compact = invoke("list", "losses")
    lines = [x for x in compact.output.splitlines() if x.strip()]
    assert len(lines) == n + 2  # title, header, one line per loss
    assert all(len(x) <= 80 for x in lines)
    surrogate = json.loads(invoke("list", "losses", "--family", "metric-surrogate", "--task", "multiclass",
                                  "--format", "json").output)
    assert surrogate and all(r["family"] == "metric-surrogate" and "multiclass" in r["tasks"] for r in surrogate)
    globbed = json.loads(invoke("list", "losses", "anyloss-*", "--format", "json").output)
    assert globbed and all(r["name"].startswith("anyloss-") for r in globbed)
    names = {r["name"] for r in json.loads(invoke("list", "losses", "focal", "-f", "json").output)}
    assert {"focal", "cb-focal"} <= names and all("focal" in x for x in names)  # a substring
    one = invoke("list", "losses", "focal")  # an exact name: its catalogue entry
    assert "Lin, Goyal, Girshick" in one.output and "gamma" in one.output
    detailed = invoke("list", "losses", "--details", "--family", "ldr")
    assert "params" in detailed.output and "needs" in detailed.output
    csv_text = invoke("list", "losses", "--format", "csv", "--task", "segmentation").output
    assert csv_text.startswith("name,family,tasks,") and len(csv_text.splitlines()) == 1 + len(
        json.loads(invoke("list", "losses", "--task", "segmentation", "-f", "json").output))
    nothing = runner.invoke(app, ["list", "losses", "nope*"])
    assert nothing.exit_code == 2 and "No losses match 'nope*'" in nothing.output


def test_readme_lists_every_packaged_suite() -> None:
    from lossbench.suite import packaged_suites

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("| suite | task |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([a-z0-9-]+)`", "\n".join(line.split("|")[1] for line in table.splitlines()[2:])))
    assert listed == set(packaged_suites())
